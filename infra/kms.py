"""Customer-managed KMS keys: one per concern, rotated yearly, with an explicit key policy.

The account root may administer and use the key (so IAM policies can delegate use to one
role at a time); a service that encrypts on its own behalf (CloudWatch Logs) is granted use
for the resources it names in the encryption context only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.iam import Account, key_policy_document

# Spelled out rather than `kms:*`: administration plus the cryptographic operations that
# RDS, S3, ECR, EKS, ElastiCache and Secrets Manager perform through IAM delegation.
ACCOUNT_KEY_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
SERVICE_KEY_ACTIONS = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)


@dataclass(frozen=True)
class ServiceGrant:
    """A service principal that uses the key itself, limited by a condition."""

    sid: str
    service: str
    conditions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def logs_grant(account: Account, log_group_names: Sequence[str]) -> ServiceGrant:
    """CloudWatch Logs may use the key for the named log groups only."""
    arns = [
        f"arn:{account.partition}:logs:{account.region}:{account.account_id}:log-group:{name}"
        for name in log_group_names
    ]
    return ServiceGrant(
        sid="CloudWatchLogsEncryptsNamedGroups",
        service=f"logs.{account.region}.amazonaws.com",
        conditions={"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": arns}},
    )


def encryption_key(
    name: str,
    *,
    description: str,
    account: Account,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
    grants: Sequence[ServiceGrant] = (),
    provider: pulumi.ProviderResource | None = None,
    protect: bool = False,
) -> aws.kms.Key:
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AccountAdministersAndDelegates",
            "Effect": "Allow",
            "Principal": {"AWS": account.root_arn},
            "Action": list(ACCOUNT_KEY_ACTIONS),
            "Resource": "*",
        }
    ]
    for grant in grants:
        statement: dict[str, Any] = {
            "Sid": grant.sid,
            "Effect": "Allow",
            "Principal": {"Service": grant.service},
            "Action": list(SERVICE_KEY_ACTIONS),
            "Resource": "*",
        }
        if grant.conditions:
            statement["Condition"] = {op: dict(v) for op, v in grant.conditions.items()}
        statements.append(statement)
    opts = pulumi.ResourceOptions(parent=parent, provider=provider)
    key = aws.kms.Key(
        name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=key_policy_document(statements),
        tags=dict(tags),
        # A key that encrypts stored data is as stateful as the data: losing it loses them.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=protect)),
    )
    aws.kms.Alias(
        f"{name}-alias",
        name=f"alias/{name}",
        target_key_id=key.key_id,
        opts=opts,
    )
    return key
