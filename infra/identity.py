"""Least-privilege roles for the workloads, assumed through IRSA, and the service's own secret.

- The service role reads exactly the secrets the service needs (the database's managed master
  secret, the Redis auth token, the service's API credentials), named by ARN, and may decrypt
  them only through Secrets Manager.
- The backup role writes and reads dumps under its prefix of the backup bucket, lists only
  that prefix, and uses the bucket's key only through S3.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.iam import Account, allow, irsa_trust_policy, policy_document
from infra.kms import encryption_key
from infra.tags import Tags

# The properties of the service secret's JSON (the file names the service reads).
API_KEYS_PROPERTY = "api_keys"
MODEL_API_KEY_PROPERTY = "model_api_key"
INITIAL_PRINCIPAL = "platform"


@dataclass(frozen=True)
class ReadableSecret:
    arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]


@dataclass(frozen=True)
class IdentityArgs:
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    namespace: str
    service_account: str
    backup_service_account: str
    # Secrets other components own that the service reads.
    service_secrets: Sequence[ReadableSecret]
    backup_bucket_arn: pulumi.Input[str]
    backup_key_arn: pulumi.Input[str]
    backup_prefix: str
    account: Account
    tags: Tags
    # The DR region: the service secret (API keys) is replicated there, encrypted with a key
    # of that region (Secrets Manager replica: "the replicas are copies of the source secret",
    # docs.aws.amazon.com/secretsmanager/latest/userguide/replicate-secrets.html).
    replica_provider: pulumi.ProviderResource | None = None
    replica_account: Account | None = None
    # A DR stack: the replica secret in this region is the service secret; none is created.
    existing_secret: ReadableSecret | None = None


class Identity(pulumi.ComponentResource):
    service_role_arn: pulumi.Output[str]
    backup_role_arn: pulumi.Output[str]
    service_secret_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-platform:identity:Identity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags, account = args.tags, args.account

        own, secret_version = (
            (args.existing_secret, None)
            if args.existing_secret is not None
            else self._service_secret(name, args)
        )
        readable = [*args.service_secrets, own]
        secrets_via = f"secretsmanager.{account.region}.amazonaws.com"
        service_role = aws.iam.Role(
            f"{name}-service",
            description=f"IRSA role of {args.namespace}/{args.service_account}",
            assume_role_policy=irsa_trust_policy(
                args.oidc_provider_arn, args.oidc_issuer, args.namespace, args.service_account
            ),
            tags=tags.named(f"{name}-service"),
            opts=child,
        )
        service_policy = aws.iam.RolePolicy(
            f"{name}-service",
            role=service_role.id,
            policy=policy_document(
                [
                    allow(
                        "ReadOwnSecrets",
                        ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                        [item.arn for item in readable],
                    ),
                    allow(
                        "DecryptOwnSecrets",
                        ["kms:Decrypt"],
                        [item.key_arn for item in readable],
                        {"StringEquals": {"kms:ViaService": secrets_via}},
                    ),
                ]
            ),
            opts=child,
        )

        prefix = args.backup_prefix
        bucket_arn = pulumi.Output.from_input(args.backup_bucket_arn)
        s3_via = f"s3.{account.region}.amazonaws.com"
        backup_role = aws.iam.Role(
            f"{name}-backup",
            description=f"IRSA role of {args.namespace}/{args.backup_service_account} (backups)",
            assume_role_policy=irsa_trust_policy(
                args.oidc_provider_arn,
                args.oidc_issuer,
                args.namespace,
                args.backup_service_account,
            ),
            tags=tags.named(f"{name}-backup"),
            opts=child,
        )
        backup_policy = aws.iam.RolePolicy(
            f"{name}-backup",
            role=backup_role.id,
            policy=policy_document(
                [
                    allow(
                        "ListOwnPrefix",
                        ["s3:ListBucket"],
                        [bucket_arn],
                        {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
                    ),
                    allow(
                        "ReadWriteOwnPrefix",
                        # Multipart uploads stream the dump; a failed one is aborted.
                        [
                            "s3:PutObject",
                            "s3:GetObject",
                            "s3:AbortMultipartUpload",
                            "s3:ListMultipartUploadParts",
                        ],
                        [bucket_arn.apply(lambda arn: f"{arn}/{prefix}*")],
                    ),
                    allow(
                        "UseBucketKey",
                        ["kms:GenerateDataKey", "kms:Decrypt"],
                        [args.backup_key_arn],
                        {"StringEquals": {"kms:ViaService": s3_via}},
                    ),
                ]
            ),
            opts=child,
        )

        self.service_role_arn = service_role.arn
        self.backup_role_arn = backup_role.arn
        self.service_secret_arn = pulumi.Output.from_input(own.arn)
        # What the release's pods need in place before they start: their roles' permissions
        # and a first version of the secret External Secrets syncs (a DR stack's replica
        # already has its versions).
        self.release_prerequisites: list[pulumi.Resource] = [
            service_policy,
            backup_policy,
            *([secret_version] if secret_version is not None else []),
        ]
        self.register_outputs(
            {
                "serviceRoleArn": self.service_role_arn,
                "backupRoleArn": self.backup_role_arn,
                "serviceSecretArn": self.service_secret_arn,
            }
        )

    def _service_secret(
        self, name: str, args: IdentityArgs
    ) -> tuple[ReadableSecret, aws.secretsmanager.SecretVersion]:
        """The service's own secret (API keys, model key), with its initial API key."""
        child = pulumi.ResourceOptions(parent=self)
        tags, account = args.tags, args.account
        key = encryption_key(
            f"{name}-service-secret",
            description=f"The service's API credentials in {name}",
            account=account,
            tags=tags.named(f"{name}-service-secret"),
            parent=self,
        )
        replicas = None
        if args.replica_provider is not None and args.replica_account is not None:
            replica_key = encryption_key(
                f"{name}-service-secret-dr",
                description=f"The replica of the {name} service's API credentials",
                account=args.replica_account,
                tags=tags.named(f"{name}-service-secret-dr"),
                parent=self,
                provider=args.replica_provider,
            )
            replicas = [
                aws.secretsmanager.SecretReplicaArgs(
                    region=args.replica_account.region, kms_key_id=replica_key.arn
                )
            ]
        secret = aws.secretsmanager.Secret(
            f"{name}-service-secret",
            name_prefix=f"{name}/service-",
            description=(
                f"API keys of the {name} service ({API_KEYS_PROPERTY}) and, for a hosted model, "
                f"the provider's key ({MODEL_API_KEY_PROPERTY})"
            ),
            kms_key_id=key.arn,
            replicas=replicas,
            recovery_window_in_days=7,
            tags=tags.named(f"{name}-service-secret"),
            opts=child,
        )
        initial_key = random.RandomPassword(
            f"{name}-initial-api-key", length=48, special=False, opts=child
        )
        secret_version = aws.secretsmanager.SecretVersion(
            f"{name}-service-secret",
            secret_id=secret.id,
            # Derived from the generated key, so a Pulumi secret as well.
            secret_string=initial_key.result.apply(
                lambda value: json.dumps(
                    {API_KEYS_PROPERTY: json.dumps({INITIAL_PRINCIPAL: value})}
                )
            ),
            # Operators add keys and the model key out of band; do not reset them.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["secretString"]),
        )

        return ReadableSecret(arn=secret.arn, key_arn=key.arn), secret_version
