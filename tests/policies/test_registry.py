"""The pack as a whole: every rule the issue lists, at the level it asks for."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from policies.registry import ALL_POLICIES, PACK_ENFORCEMENT_LEVEL, PACK_NAME, POLICIES_BY_NAME

EXPECTED_LEVELS = {
    "rds-storage-encrypted": EnforcementLevel.MANDATORY,
    "rds-not-publicly-accessible": EnforcementLevel.MANDATORY,
    "rds-backup-retention": EnforcementLevel.MANDATORY,
    "rds-deletion-protection-in-production": EnforcementLevel.MANDATORY,
    "rds-multi-az-in-production": EnforcementLevel.MANDATORY,
    "elasticache-encryption-in-transit": EnforcementLevel.MANDATORY,
    "elasticache-encryption-at-rest": EnforcementLevel.MANDATORY,
    "elasticache-rbac": EnforcementLevel.MANDATORY,
    "s3-public-access-block": EnforcementLevel.MANDATORY,
    "s3-versioning": EnforcementLevel.MANDATORY,
    "s3-sse-kms": EnforcementLevel.MANDATORY,
    "s3-tls-only-policy": EnforcementLevel.MANDATORY,
    "s3-replication-no-delete-markers": EnforcementLevel.MANDATORY,
    "s3-replica-object-lock": EnforcementLevel.MANDATORY,
    "s3-backup-break-glass": EnforcementLevel.MANDATORY,
    "ecr-immutable-tags": EnforcementLevel.MANDATORY,
    "ecr-scan-on-push": EnforcementLevel.MANDATORY,
    "eks-private-endpoint": EnforcementLevel.MANDATORY,
    "eks-secrets-encryption": EnforcementLevel.MANDATORY,
    "eks-control-plane-logs": EnforcementLevel.MANDATORY,
    "security-group-no-open-ingress": EnforcementLevel.MANDATORY,
    "security-group-rule-no-open-ingress": EnforcementLevel.MANDATORY,
    "iam-no-wildcard-admin": EnforcementLevel.MANDATORY,
    "iam-no-inline-admin": EnforcementLevel.MANDATORY,
    "required-tags": EnforcementLevel.MANDATORY,
    "kubernetes-production-replicas": EnforcementLevel.MANDATORY,
    "kubernetes-production-pdb": EnforcementLevel.MANDATORY,
    "kubernetes-production-canary": EnforcementLevel.MANDATORY,
    "kubernetes-resources-set": EnforcementLevel.MANDATORY,
    "kubernetes-image-not-latest": EnforcementLevel.MANDATORY,
    # The one rule the issue makes advisory: `latest` in dev.
    "kubernetes-image-not-latest-in-dev": EnforcementLevel.ADVISORY,
    "stack-backup-bucket-wired": EnforcementLevel.MANDATORY,
    # The rules a fresh account's first `pulumi up` taught (issue 15).
    "rds-no-replica-of-managed-password-source": EnforcementLevel.MANDATORY,
    "eks-version-in-standard-support": EnforcementLevel.MANDATORY,
    "eks-network-policy-enforced": EnforcementLevel.MANDATORY,
    "eks-endpoint-reachable-by-deployer": EnforcementLevel.MANDATORY,
    "eks-admin-access-entries": EnforcementLevel.MANDATORY,
    "ec2-imdsv2-required": EnforcementLevel.MANDATORY,
    "kms-key-rotation": EnforcementLevel.MANDATORY,
    "kubernetes-image-by-digest": EnforcementLevel.MANDATORY,
    "stateful-resources-protected": EnforcementLevel.MANDATORY,
    # Mandatory since the edge moved off ingress-nginx (issue 15, H4).
    "kubernetes-no-retired-chart": EnforcementLevel.MANDATORY,
    # An estimate from assumed usage informs; a stack file makes it mandatory (cost.enforce).
    "stack-monthly-budget": EnforcementLevel.ADVISORY,
    "no-pod-mounts-the-rds-master-secret": EnforcementLevel.MANDATORY,
    "service-database-user-is-not-the-master": EnforcementLevel.MANDATORY,
}
STACK_POLICIES = {
    "s3-public-access-block",
    "s3-versioning",
    "s3-sse-kms",
    "s3-tls-only-policy",
    "s3-replication-no-delete-markers",
    "s3-replica-object-lock",
    "s3-backup-break-glass",
    "security-group-rule-no-open-ingress",
    "stack-backup-bucket-wired",
    "rds-no-replica-of-managed-password-source",
    "eks-network-policy-enforced",
    "eks-endpoint-reachable-by-deployer",
    "eks-admin-access-entries",
    "stack-monthly-budget",
    "no-pod-mounts-the-rds-master-secret",
    "service-database-user-is-not-the-master",
}


def test_the_pack_holds_exactly_the_expected_rules_at_their_levels() -> None:
    assert {policy.name: policy.enforcement_level for policy in ALL_POLICIES} == EXPECTED_LEVELS
    assert len(POLICIES_BY_NAME) == len(ALL_POLICIES)


def test_each_rule_is_a_resource_or_a_stack_policy() -> None:
    for policy in ALL_POLICIES:
        expected = (
            StackValidationPolicy if policy.name in STACK_POLICIES else ResourceValidationPolicy
        )
        assert isinstance(policy, expected), policy.name


def test_the_pack_defaults_to_mandatory_under_a_valid_name() -> None:
    assert PACK_ENFORCEMENT_LEVEL is EnforcementLevel.MANDATORY
    assert PACK_NAME == "agent-platform"


def test_every_rule_explains_itself() -> None:
    for policy in ALL_POLICIES:
        assert policy.description.endswith("."), policy.name
