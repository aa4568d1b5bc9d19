"""ElastiCache: TLS in transit, encryption at rest, and RBAC users.

Only a replication group can meet all three; a standalone `elasticache.Cluster` (not a
member of a group) has no at-rest encryption or user group, so it is reported as such.
Clients authenticate as RBAC users of a user group (`userGroupIds`), each restricted to its
keys and commands, not with the AUTH token: one shared password with full access that cannot
be revoked per client (https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/Clusters.RBAC.html:
"Unlike ... AUTH, where all authenticated clients have full cache access ...").
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from policies.props import as_strings, is_true, lookup

REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CLUSTER = "aws:elasticache/cluster:Cluster"

_USE_A_GROUP = "use an elasticache.ReplicationGroup, which supports it"


def _standalone_cluster(args: ResourceValidationArgs) -> bool:
    return args.resource_type == CLUSTER and not lookup(args.props, "replicationGroupId")


def _in_transit(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != REPLICATION_GROUP and not _standalone_cluster(args):
        return
    if not is_true(lookup(args.props, "transitEncryptionEnabled")):
        report(
            f"'{args.name}' accepts plain-text connections: set "
            "transit_encryption_enabled=True (clients connect with rediss://).",
            None,
        )


def _at_rest(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _standalone_cluster(args):
        report(f"'{args.name}' cannot encrypt at rest on its own: {_USE_A_GROUP}.", None)
    elif args.resource_type == REPLICATION_GROUP and not is_true(
        lookup(args.props, "atRestEncryptionEnabled")
    ):
        report(
            f"'{args.name}' stores data unencrypted: set at_rest_encryption_enabled=True.",
            None,
        )


def _rbac(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _standalone_cluster(args):
        report(f"'{args.name}' cannot use RBAC user groups: {_USE_A_GROUP}.", None)
        return
    if args.resource_type != REPLICATION_GROUP:
        return
    token = lookup(args.props, "authToken")
    if isinstance(token, str) and token != "":
        report(
            f"'{args.name}' authenticates clients with a shared AUTH token: use RBAC "
            "(user_group_ids with one user per client, restricted by its access string) and "
            "drop auth_token.",
            None,
        )
    elif not as_strings(lookup(args.props, "userGroupIds")):
        report(
            f"'{args.name}' lets any client in: set user_group_ids (RBAC users, one per "
            "client, restricted by its access string).",
            None,
        )


IN_TRANSIT = ResourceValidationPolicy(
    name="elasticache-encryption-in-transit",
    description="ElastiCache encrypts traffic in transit (TLS).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_in_transit,
)
AT_REST = ResourceValidationPolicy(
    name="elasticache-encryption-at-rest",
    description="ElastiCache encrypts data at rest.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_at_rest,
)
RBAC = ResourceValidationPolicy(
    name="elasticache-rbac",
    description="ElastiCache authenticates clients as RBAC users of a user group, not with a "
    "shared AUTH token.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_rbac,
)

POLICIES = [IN_TRANSIT, AT_REST, RBAC]
