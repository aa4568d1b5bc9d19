"""Every policy of the pack, in one list: what `__main__.py` hands to `PolicyPack` and what
`policies.evaluate` runs offline."""

from __future__ import annotations

from typing import Final

from pulumi_policy import EnforcementLevel, Policy

from policies import (
    backups,
    budget,
    credentials,
    ec2,
    ecr,
    eks,
    elasticache,
    iam,
    kms,
    kubernetes,
    lifecycle,
    network,
    rds,
    s3,
    stack,
    tags,
)

PACK_NAME: Final = "agent-platform"
# A policy that states no level of its own would be mandatory; every policy here states one.
PACK_ENFORCEMENT_LEVEL: Final = EnforcementLevel.MANDATORY

ALL_POLICIES: list[Policy] = [
    *rds.POLICIES,
    *elasticache.POLICIES,
    *s3.POLICIES,
    *backups.POLICIES,
    *ecr.POLICIES,
    *eks.POLICIES,
    *ec2.POLICIES,
    *kms.POLICIES,
    *network.POLICIES,
    *iam.POLICIES,
    *tags.POLICIES,
    *kubernetes.POLICIES,
    *stack.POLICIES,
    *lifecycle.POLICIES,
    *budget.POLICIES,
    *credentials.POLICIES,
]

POLICIES_BY_NAME: dict[str, Policy] = {policy.name: policy for policy in ALL_POLICIES}
if len(POLICIES_BY_NAME) != len(ALL_POLICIES):
    raise RuntimeError("two policies of the pack share a name")
