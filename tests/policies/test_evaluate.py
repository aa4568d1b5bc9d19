"""The offline evaluation `make plan` runs: records in, violations out, as the CLI would."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policies.config import PolicyConfigError
from policies.eks_versions import STANDARD_SUPPORT
from policies.evaluate import (
    PolicyEvaluationError,
    ResourceRecord,
    Violation,
    evaluate,
    load_config,
    mandatory,
    resolve_config,
)
from tests.policies.support import urn

TAGS = {"owner": "platform-team", "environment": "prod", "cost-centre": "agent-platform-prod"}
PROVIDER_URN = urn("pulumi:providers:aws", "aws")
BUCKET_NAME = "agent-prod-backups-1a2b3c"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET_NAME}"
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/abc"
SECRETS = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:agent-*"
# The version whose standard support lasts longest: when even that one runs out, the dated
# table needs the next version (the pack's own rule says so in `make plan` too).
NEWEST_VERSION = max(STANDARD_SUPPORT, key=lambda version: STANDARD_SUPPORT[version][1])
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
DIGEST = "sha256:" + "ab" * 32
DENY_PLAIN_HTTP = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def record(
    type_: str, name: str, inputs: dict[str, Any], *, stack: str = "prod", **kw: Any
) -> ResourceRecord:
    return ResourceRecord(
        type=type_,
        urn=urn(type_, name, stack),
        name=name,
        props=inputs,
        provider=f"{PROVIDER_URN}::aws-provider-id" if type_.startswith("aws:") else None,
        **kw,
    )


def compliant_prod_stack() -> list[ResourceRecord]:
    """What the Pulumi program records for a compliant production stack, in miniature: one
    resource of every type a rule reads, joined the way an offline recording joins them."""
    bucket_urn = urn("aws:s3/bucket:Bucket", "agent-prod-backups")
    provider = ResourceRecord(
        type="pulumi:providers:aws",
        urn=PROVIDER_URN,
        name="aws",
        props={"region": "eu-west-1", "defaultTags": json.dumps({"tags": TAGS})},
    )
    on_bucket = {"bucket": BUCKET_NAME}
    return [
        provider,
        record(
            "aws:rds/instance:Instance",
            "agent-prod-db",
            {
                "storageEncrypted": True,
                "publiclyAccessible": False,
                "backupRetentionPeriod": 30,
                "deletionProtection": True,
                "multiAz": True,
                "tags": TAGS,
            },
            protect=True,
        ),
        record(
            "aws:elasticache/replicationGroup:ReplicationGroup",
            "agent-prod-cache",
            {
                "transitEncryptionEnabled": True,
                "atRestEncryptionEnabled": True,
                "userGroupIds": ["agent-prod-cache"],
            },
            protect=True,
        ),
        record(
            "aws:ecr/repository:Repository",
            "agent",
            {"imageTagMutability": "IMMUTABLE", "imageScanningConfiguration": {"scanOnPush": True}},
            protect=True,
        ),
        record(
            "aws:eks/cluster:Cluster",
            "agent-prod",
            {
                "version": NEWEST_VERSION,
                "upgradePolicy": {"supportType": "STANDARD"},
                "vpcConfig": {
                    "endpointPrivateAccess": True,
                    "endpointPublicAccess": True,
                    "publicAccessCidrs": ["198.51.100.0/28"],
                },
                "encryptionConfig": {"provider": {"keyArn": KEY_ARN}, "resources": ["secrets"]},
                "enabledClusterLogTypes": ["api", "audit", "authenticator"],
            },
        ),
        record(
            "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
            "agent-prod-admin-0",
            {"principalArn": "arn:aws:iam::406812953771:role/deployer", "policyArn": ADMIN_POLICY},
        ),
        record(
            "aws:ec2/securityGroup:SecurityGroup",
            "agent-prod-db",
            {
                "ingress": [
                    {
                        "protocol": "tcp",
                        "fromPort": 5432,
                        "toPort": 5432,
                        "cidrBlocks": ["10.30.0.0/16"],
                    }
                ]
            },
            id="sg-0123",
        ),
        record(
            "aws:iam/rolePolicy:RolePolicy",
            "agent-prod-service",
            {
                "policy": json.dumps(
                    {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "secretsmanager:GetSecretValue",
                                "Resource": SECRETS,
                            }
                        ]
                    }
                )
            },
        ),
        record(
            "aws:s3/bucket:Bucket",
            "agent-prod-backups",
            {"bucketPrefix": "agent-prod-backups-"},
            outputs={
                "bucketPrefix": "agent-prod-backups-",
                "bucket": BUCKET_NAME,
                "arn": BUCKET_ARN,
            },
            id=BUCKET_NAME,
            protect=True,
        ),
        record(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "agent-prod-backups",
            {
                **on_bucket,
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
            dependencies=(bucket_urn,),
        ),
        record(
            "aws:s3/bucketVersioning:BucketVersioning",
            "agent-prod-backups",
            {**on_bucket, "versioningConfiguration": {"status": "Enabled"}},
            dependencies=(bucket_urn,),
        ),
        record(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "agent-prod-backups",
            {
                **on_bucket,
                "rules": [
                    {
                        "applyServerSideEncryptionByDefault": {
                            "sseAlgorithm": "aws:kms",
                            "kmsMasterKeyId": KEY_ARN,
                        }
                    }
                ],
            },
            dependencies=(bucket_urn,),
        ),
        record(
            "aws:s3/bucketPolicy:BucketPolicy",
            "agent-prod-backups",
            {**on_bucket, "policy": json.dumps({"Statement": [DENY_PLAIN_HTTP]})},
            dependencies=(bucket_urn,),
        ),
        record(
            "kubernetes:helm.sh/v3:Release",
            "agent-prod-service",
            {
                "chart": "/repo/charts/langgraph-agent",
                "values": {
                    "image": {"repository": "agent", "tag": "0.1.0", "digest": DIGEST},
                    "replicaCount": 3,
                    "autoscaling": {"enabled": True, "minReplicas": 3},
                    "podDisruptionBudget": {"enabled": True, "minAvailable": 2},
                    "canary": {"enabled": True},
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "512Mi"},
                        "limits": {"memory": "1Gi"},
                    },
                    "config": {"backupBucket": BUCKET_NAME},
                },
            },
            dependencies=(bucket_urn,),
        ),
    ]


def replace(records: list[ResourceRecord], type_: str, **inputs: Any) -> list[ResourceRecord]:
    """The records with the inputs (and outputs) of the one resource of `type_` updated."""
    changed = []
    for item in records:
        if item.type == type_:
            props = {**copy.deepcopy(dict(item.props)), **inputs}
            outputs = None if item.outputs is None else {**dict(item.outputs), **inputs}
            item = ResourceRecord(**{**item.__dict__, "props": props, "outputs": outputs})
        changed.append(item)
    return changed


def test_a_compliant_production_stack_has_no_violations() -> None:
    assert evaluate(compliant_prod_stack()) == []


@pytest.mark.parametrize(
    ("type_", "inputs", "policy"),
    [
        ("aws:rds/instance:Instance", {"multiAz": False}, "rds-multi-az-in-production"),
        ("aws:rds/instance:Instance", {"tags": {"owner": ""}}, "required-tags"),
        (
            "aws:elasticache/replicationGroup:ReplicationGroup",
            {"userGroupIds": None},
            "elasticache-rbac",
        ),
        ("aws:ecr/repository:Repository", {"imageTagMutability": "MUTABLE"}, "ecr-immutable-tags"),
        ("aws:eks/cluster:Cluster", {"enabledClusterLogTypes": []}, "eks-control-plane-logs"),
        (
            "aws:ec2/securityGroup:SecurityGroup",
            {"ingress": [{"protocol": "-1", "cidrBlocks": ["0.0.0.0/0"]}]},
            "security-group-no-open-ingress",
        ),
        (
            "aws:iam/rolePolicy:RolePolicy",
            {
                "policy": json.dumps(
                    {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}
                )
            },
            "iam-no-wildcard-admin",
        ),
        (
            "aws:s3/bucketVersioning:BucketVersioning",
            {"versioningConfiguration": {"status": "Suspended"}},
            "s3-versioning",
        ),
        ("aws:s3/bucketPolicy:BucketPolicy", {"policy": "{}"}, "s3-tls-only-policy"),
        (
            "kubernetes:helm.sh/v3:Release",
            {"values": {"config": {"backupBucket": BUCKET_NAME}}},
            "kubernetes-production-canary",
        ),
    ],
    ids=lambda value: (
        value if isinstance(value, str) and "/" not in value and ":" not in value else None
    ),
)
def test_a_broken_resource_is_reported_by_the_rule_that_guards_it(
    type_: str, inputs: dict[str, Any], policy: str
) -> None:
    violations = evaluate(replace(compliant_prod_stack(), type_, **inputs))
    assert policy in {violation.policy for violation in violations}
    found = next(violation for violation in violations if violation.policy == policy)
    assert found.mandatory
    assert found.urn.startswith("urn:pulumi:prod::")
    assert found.description


def test_iam_wildcard_violations_carry_both_rules() -> None:
    inline_admin = json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    records = replace(compliant_prod_stack(), "aws:iam/rolePolicy:RolePolicy", policy=inline_admin)
    names = [violation.policy for violation in mandatory(evaluate(records))]
    assert names == ["iam-no-wildcard-admin", "iam-no-inline-admin"]


def test_tuples_are_records_too() -> None:
    resource_urn = urn("aws:ecr/repository:Repository", "agent")
    violations = evaluate(
        [("aws:ecr/repository:Repository", resource_urn, "agent", {"tags": TAGS})]
    )
    assert [(v.policy, v.enforcement_level, v.urn) for v in violations] == [
        ("ecr-immutable-tags", "mandatory", resource_urn),
        ("ecr-scan-on-push", "mandatory", resource_urn),
        # No bucket and no release: the stack rule blames the stack, not a resource.
        ("stack-backup-bucket-wired", "mandatory", ""),
        ("stack-backup-bucket-wired", "mandatory", ""),
        ("stateful-resources-protected", "mandatory", resource_urn),
    ]
    assert violations[0].to_dict() == {
        "policy": "ecr-immutable-tags",
        "enforcementLevel": "mandatory",
        "message": "'agent' has image_tag_mutability=MUTABLE: set it to IMMUTABLE.",
        "urn": resource_urn,
        "description": "ECR repositories have immutable image tags.",
    }


def test_the_providers_default_tags_reach_the_tag_rule() -> None:
    key = record(
        "aws:kms/key:Key", "agent-prod-db", {"description": "database", "enableKeyRotation": True}
    )
    records = [*compliant_prod_stack(), key]
    assert evaluate(records) == []
    orphan = ResourceRecord(type=key.type, urn=key.urn, name=key.name, props=key.props)
    violations = evaluate([*compliant_prod_stack(), orphan])
    assert [(v.policy, v.urn) for v in violations] == [("required-tags", key.urn)]


def test_stack_rules_join_by_the_recorded_id_when_outputs_lack_the_name() -> None:
    records = []
    for item in compliant_prod_stack():
        if item.type == "aws:s3/bucket:Bucket":
            item = ResourceRecord(**{**item.__dict__, "outputs": {"arn": BUCKET_ARN}})
        elif item.type.startswith("aws:s3/bucket"):
            item = ResourceRecord(**{**item.__dict__, "dependencies": ()})
        records.append(item)
    assert evaluate(records) == []


def test_a_dev_stack_gets_advisories_where_prod_gets_mandates() -> None:
    release = record(
        "kubernetes:helm.sh/v3:Release",
        "agent-dev-service",
        {
            "chart": "charts/langgraph-agent",
            "values": {
                "image": {"tag": "latest"},
                "resources": {
                    "requests": {"cpu": "1", "memory": "1Gi"},
                    "limits": {"memory": "1Gi"},
                },
            },
        },
        stack="dev",
    )
    violations = [v for v in evaluate([release]) if v.policy.startswith("kubernetes-")]
    assert [(v.policy, v.enforcement_level) for v in violations] == [
        ("kubernetes-image-not-latest-in-dev", "advisory")
    ]
    assert mandatory(violations) == []


def test_config_sets_levels_and_thresholds_like_the_cli() -> None:
    records = compliant_prod_stack()
    config = {
        "all": "advisory",
        "rds-backup-retention": {"enforcementLevel": "mandatory", "minBackupRetentionDays": 35},
        "kubernetes-production-replicas": {"minProductionReplicas": 5},
        "required-tags": "disabled",
        "ecr-immutable-tags": "remediate",
    }
    records = replace(records, "aws:ecr/repository:Repository", imageTagMutability="MUTABLE")
    levels = {(v.policy, v.enforcement_level) for v in evaluate(records, config)}
    assert levels == {
        ("rds-backup-retention", "mandatory"),
        ("kubernetes-production-replicas", "advisory"),
        # Nothing here remediates: such a violation counts as mandatory, as in the CLI.
        ("ecr-immutable-tags", "mandatory"),
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"rds-backup-retentoin": "advisory"}, "unknown policies: ['rds-backup-retentoin']"),
        ({"rds-backup-retention": {"minBackupDays": 3}}, "unknown settings ['minBackupDays']"),
        ({"all": "strict"}, "'all': enforcement level must be one of advisory, mandatory"),
        ({"ecr-scan-on-push": 3}, "must be an enforcement level or an object, got 3"),
    ],
)
def test_a_wrong_config_is_refused_naming_the_problem(config: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        resolve_config(config)


def test_a_malformed_threshold_fails_naming_policy_setting_and_resource() -> None:
    config = {"rds-backup-retention": {"minBackupRetentionDays": "a week"}}
    with pytest.raises(PolicyEvaluationError) as caught:
        evaluate(compliant_prod_stack(), config)
    message = str(caught.value)
    assert "policy 'rds-backup-retention' failed on urn:pulumi:prod::" in message
    assert "'minBackupRetentionDays' must be an integer" in message


def test_an_unknown_value_is_an_advisory_that_says_the_rule_could_not_run() -> None:
    records = replace(
        compliant_prod_stack(), "aws:s3/bucketPolicy:BucketPolicy", policy=UNKNOWN_STRING_VALUE
    )
    violations = evaluate(records)
    assert [(v.policy, v.enforcement_level) for v in violations] == [
        ("s3-tls-only-policy", "advisory")
    ]
    assert (
        "cannot be checked before the resources exist: string value at .policy"
        in violations[0].message
    )


def test_load_config_reads_and_checks_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "policy-config.json"
    path.write_text(json.dumps({"rds-backup-retention": {"minBackupRetentionDays": 14}}))
    assert load_config(path) == {"rds-backup-retention": {"minBackupRetentionDays": 14}}
    path.write_text("{not json")
    with pytest.raises(PolicyConfigError, match="cannot read policy pack config"):
        load_config(path)
    path.write_text(json.dumps({"no-such-policy": "advisory"}))
    with pytest.raises(PolicyConfigError, match="unknown policies"):
        load_config(path)


def test_records_load_from_json_objects() -> None:
    data = {
        "type": "aws:s3/bucket:Bucket",
        "urn": urn("aws:s3/bucket:Bucket", "b"),
        "name": "b",
        "id": "b-123",
        "inputs": {"bucketPrefix": "b-"},
        "outputs": {"bucket": "b-123"},
        "dependencies": ["urn:x"],
        "propertyDependencies": {"bucket": ["urn:x"]},
        "ignoreChanges": ["tags"],
        "protect": True,
    }
    loaded = ResourceRecord.from_mapping(data)
    assert loaded.id == "b-123"
    assert loaded.property_dependencies == {"bucket": ("urn:x",)}
    assert loaded.ignore_changes == ("tags",)
    with pytest.raises(ValueError, match=r"lacks \['name', 'inputs'\]"):
        ResourceRecord.from_mapping({"type": "t", "urn": "u"})


def test_an_empty_stack_lacks_its_backup_bucket_and_release() -> None:
    violations: list[Violation] = evaluate([])
    assert [v.message for v in violations] == [
        "the stack has no S3 bucket for database backups.",
        "the stack has no Helm release of the 'langgraph-agent' chart to wire backups to.",
    ]
