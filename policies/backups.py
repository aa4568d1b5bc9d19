"""Backups nobody can delete: what a plan must show for every replicated bucket.

- `s3-replication-no-delete-markers`: a replication rule never replicates delete markers
  (S3 "adds a delete marker in the source bucket only ... to protect data in the destination
  buckets from accidental or malicious deletions" unless delete-marker replication is on:
  docs.aws.amazon.com/AmazonS3/latest/userguide/delete-marker-replication.html).
- `s3-replica-object-lock`: the destination bucket has Object Lock with a default retention
  (COMPLIANCE or GOVERNANCE) at least as long as the source bucket keeps its objects (its
  lifecycle expiration), so a copy outlives its original
  (docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html).
- `s3-backup-break-glass`: the source and destination buckets' policies deny deleting object
  versions, and changing lifecycle or replication, to every principal but one (a condition on
  the principal names the break-glass role).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.joins import known_strings, referenced
from policies.props import as_items, as_strings, lookup, lookup_known, parse_json_document
from policies.s3 import BUCKET_POLICY, BUCKET_TYPES

REPLICATION = frozenset(
    {
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
    }
)
OBJECT_LOCK = frozenset({"aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"})
LIFECYCLE = frozenset({"aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"})
LOCK_MODES = frozenset({"COMPLIANCE", "GOVERNANCE"})
# Both must be denied to all but one principal: a deleted version and a loosened lifecycle
# or replication are the two ways backups disappear.
MUST_DENY = ("s3:DeleteObjectVersion", "s3:PutLifecycleConfiguration")


def _buckets(args: StackValidationArgs) -> list[PolicyResource]:
    return [r for r in args.resources if r.resource_type in BUCKET_TYPES]


def _bucket_ids(bucket: PolicyResource) -> list[str]:
    return known_strings(bucket, "bucket", "id")


def _bucket_arns(bucket: PolicyResource) -> list[str]:
    return known_strings(bucket, "arn")


def _attached(
    args: StackValidationArgs, kinds: frozenset[str], bucket: PolicyResource
) -> list[PolicyResource]:
    buckets = _buckets(args)
    return [
        resource
        for resource in args.resources
        if resource.resource_type in kinds
        and (found := referenced(resource, "bucket", buckets, _bucket_ids)) is not None
        and found.urn == bucket.urn
    ]


def _destination(
    args: StackValidationArgs, replication: PolicyResource, rule: Mapping[str, Any]
) -> PolicyResource | None:
    buckets = _buckets(args)
    arn = lookup_known(rule, "destination.bucket")
    if isinstance(arn, str):
        for bucket in buckets:
            if arn in _bucket_arns(bucket):
                return bucket
    source = referenced(replication, "bucket", buckets, _bucket_ids)
    others = [
        dependency
        for dependency in replication.property_dependencies.get("rules", [])
        if dependency.resource_type in BUCKET_TYPES
        and (source is None or dependency.urn != source.urn)
    ]
    return others[0] if len(others) == 1 else None


def _rules(replication: PolicyResource) -> list[Mapping[str, Any]]:
    rules = as_items(lookup(replication.props, "rules"))
    return [rule for rule in rules if isinstance(rule, Mapping)]


def _no_delete_markers(args: StackValidationArgs, report: ReportViolation) -> None:
    for replication in args.resources:
        if replication.resource_type not in REPLICATION:
            continue
        for rule in _rules(replication):
            status = lookup(rule, "deleteMarkerReplication.status")
            if status == "Enabled":
                report(
                    f"'{replication.name}' rule '{rule.get('id', '?')}' replicates delete "
                    "markers: one delete in the source would hide the copy too; set "
                    'deleteMarkerReplication.status to "Disabled".',
                    replication.urn,
                )


def _expiry_days(args: StackValidationArgs, bucket: PolicyResource | None) -> int:
    """The longest current-version expiration of `bucket`'s lifecycle (1 when none)."""
    if bucket is None:
        return 1
    days = [1]
    for lifecycle in _attached(args, LIFECYCLE, bucket):
        for rule in as_items(lookup(lifecycle.props, "rules")):
            value = lookup(rule, "expiration.days") if isinstance(rule, Mapping) else None
            if isinstance(value, int | float):
                days.append(int(value))
    return max(days)


def _retention_days(lock: PolicyResource) -> tuple[str | None, int]:
    retention = lookup(lock.props, "rule.defaultRetention")
    if not isinstance(retention, Mapping):
        return None, 0
    days = retention.get("days") or 0
    years = retention.get("years") or 0
    mode = retention.get("mode")
    return (str(mode) if mode else None), int(days) + 365 * int(years)


def _replica_locked(args: StackValidationArgs, report: ReportViolation) -> None:
    buckets = _buckets(args)
    for replication in args.resources:
        if replication.resource_type not in REPLICATION:
            continue
        source = referenced(replication, "bucket", buckets, _bucket_ids)
        needed = _expiry_days(args, source)
        for rule in _rules(replication):
            destination = _destination(args, replication, rule)
            if destination is None:
                continue
            locks = _attached(args, OBJECT_LOCK, destination)
            if not locks:
                report(
                    f"bucket '{destination.name}' receives replicas from '{replication.name}' "
                    "without Object Lock: add a BucketObjectLockConfiguration with a default "
                    f"retention of at least {needed} days.",
                    destination.urn,
                )
                continue
            for lock in locks:
                mode, days = _retention_days(lock)
                if mode not in LOCK_MODES or days < needed:
                    report(
                        f"'{lock.name}' on replica bucket '{destination.name}': default "
                        f"retention {mode or 'unset'} {days} days; needs COMPLIANCE or "
                        f"GOVERNANCE for at least {needed} days (the source keeps objects "
                        f"{needed} days).",
                        lock.urn,
                    )


def _denied_to_all_but_one(statements: list[Mapping[str, Any]], action: str) -> bool:
    for statement in statements:
        if str(statement.get("Effect", "")).lower() != "deny":
            continue
        principal = statement.get("Principal")
        if isinstance(principal, Mapping):
            principal = principal.get("AWS")
        if "*" not in as_strings(principal):
            continue
        actions = {item.lower() for item in as_strings(statement.get("Action"))}
        if not actions & {action.lower(), "s3:*", "*"}:
            continue
        condition = statement.get("Condition")
        if not isinstance(condition, Mapping):
            # Denied to everyone: stricter than break glass, still undeletable.
            return True
        for operator, tests in condition.items():
            if not str(operator).lower().startswith(("arnnot", "stringnot")):
                continue
            if isinstance(tests, Mapping) and any(
                str(key).lower() in {"aws:principalarn", "aws:userid"} for key in tests
            ):
                return True
    return False


def _break_glass_problem(policy: PolicyResource) -> str | None:
    document = parse_json_document(lookup(policy.props, "policy"))
    if document is None:
        return "the policy is not a JSON policy document"
    statements = [s for s in as_items(document.get("Statement")) if isinstance(s, Mapping)]
    missing = [action for action in MUST_DENY if not _denied_to_all_but_one(statements, action)]
    if not missing:
        return None
    return (
        f"{', '.join(missing)} not denied to every principal but the break-glass role "
        '(Deny, Principal "*", Condition ArnNotEquals aws:PrincipalArn)'
    )


def _break_glass(args: StackValidationArgs, report: ReportViolation) -> None:
    buckets = _buckets(args)
    involved: dict[str, PolicyResource] = {}
    for replication in args.resources:
        if replication.resource_type not in REPLICATION:
            continue
        source = referenced(replication, "bucket", buckets, _bucket_ids)
        if source is not None:
            involved[source.urn] = source
        for rule in _rules(replication):
            destination = _destination(args, replication, rule)
            if destination is not None:
                involved[destination.urn] = destination
    for bucket in involved.values():
        policies = _attached(args, BUCKET_POLICY, bucket)
        if not policies:
            report(
                f"backup bucket '{bucket.name}' has no bucket policy: deleting versions and "
                "changing lifecycle or replication must be denied to all but break glass.",
                bucket.urn,
            )
        for policy in policies:
            problem = _break_glass_problem(policy)
            if problem is not None:
                report(f"'{policy.name}' on backup bucket '{bucket.name}': {problem}.", policy.urn)


NO_DELETE_MARKER_REPLICATION = StackValidationPolicy(
    name="s3-replication-no-delete-markers",
    description="S3 replication never replicates delete markers.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_no_delete_markers,
)
REPLICA_OBJECT_LOCK = StackValidationPolicy(
    name="s3-replica-object-lock",
    description="A replication destination has Object Lock retaining copies as long as the source.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_replica_locked,
)
BREAK_GLASS_ONLY = StackValidationPolicy(
    name="s3-backup-break-glass",
    description="Only a break-glass role may delete backup versions or loosen lifecycle.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_break_glass,
)

POLICIES = [NO_DELETE_MARKER_REPLICATION, REPLICA_OBJECT_LOCK, BREAK_GLASS_ONLY]
