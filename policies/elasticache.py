"""ElastiCache: TLS in transit, encryption at rest, and an auth token.

Only a replication group can meet all three; a standalone `elasticache.Cluster` (not a
member of a group) has no at-rest encryption or auth token, so it is reported as such.
An RBAC user group (`userGroupIds`) is accepted in place of the token: it is the stronger
form of the same control.
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


def _auth_token(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _standalone_cluster(args):
        report(f"'{args.name}' cannot require an auth token: {_USE_A_GROUP}.", None)
    elif args.resource_type == REPLICATION_GROUP:
        token = lookup(args.props, "authToken")
        has_token = isinstance(token, str) and token != ""
        if not has_token and not as_strings(lookup(args.props, "userGroupIds")):
            report(
                f"'{args.name}' lets any client in: set auth_token (from a generated secret) "
                "or user_group_ids.",
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
AUTH_TOKEN = ResourceValidationPolicy(
    name="elasticache-auth-token",
    description="ElastiCache requires clients to authenticate.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_auth_token,
)

POLICIES = [IN_TRANSIT, AT_REST, AUTH_TOKEN]
