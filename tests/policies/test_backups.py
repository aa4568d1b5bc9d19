"""Backups nobody can delete: delete markers not replicated, an Object-Locked replica that
keeps copies as long as the source keeps objects, break glass the only way to delete or
loosen. Each rule is shown passing the program's shape and catching each bad case."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, PolicyResource
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policies import backups
from tests.policies.support import check_stack, policy_resource

BUCKET = "aws:s3/bucket:Bucket"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
SOURCE, REPLICA = "agent-prod-backups-1a2b", "agent-prod-backups-replica-3c4d"
BREAK_GLASS = "arn:aws:iam::111122223333:role/backup-break-glass"


def arn(name: str) -> str:
    return f"arn:aws:s3:::{name}"


def protection(name: str, **changes: Any) -> dict[str, Any]:
    statements = [
        {
            "Sid": "OnlyBreakGlassChangesProtection",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["s3:PutLifecycleConfiguration", "s3:PutReplicationConfiguration"],
            "Resource": [arn(name)],
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": BREAK_GLASS}},
        },
        {
            "Sid": "OnlyBreakGlassDeletesBackups",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"],
            "Resource": [f"{arn(name)}/*"],
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": BREAK_GLASS}},
        },
    ]
    statements[1].update(changes)
    return {
        "bucket": name,
        "policy": json.dumps({"Version": "2012-10-17", "Statement": statements}),
    }


def rule(**changes: Any) -> dict[str, Any]:
    return {
        "id": "replicate-dumps",
        "status": "Enabled",
        "filter": {"prefix": ""},
        "deleteMarkerReplication": {"status": "Disabled"},
        "destination": {"bucket": arn(REPLICA)},
        **changes,
    }


def stack(
    *,
    replication_rule: dict[str, Any] | None = None,
    lock: dict[str, Any] | None = None,
    source_policy: dict[str, Any] | None = None,
    replica_policy: dict[str, Any] | None = None,
    expiry_days: int = 30,
    preview: bool = False,
) -> list[PolicyResource]:
    """The program's shape: source bucket with a 30-day lifecycle, replica with a 35-day
    COMPLIANCE lock, both with break-glass policies. `preview`: the replica's ARN unknown,
    the join made through property dependencies. An override of {} leaves a part out."""
    source = policy_resource(BUCKET, "backups", {"bucket": SOURCE, "arn": arn(SOURCE)})
    replica_props = {"bucket": REPLICA, "arn": arn(REPLICA), "objectLockEnabled": True}
    if preview:
        replica_props = {
            **replica_props,
            "bucket": UNKNOWN_STRING_VALUE,
            "arn": UNKNOWN_STRING_VALUE,
        }
    replica = policy_resource(BUCKET, "backups-replica", replica_props)

    def on(bucket: PolicyResource, name: str) -> dict[str, Any]:
        return {"property_dependencies": {"bucket": [bucket]}} if preview else {}

    def bucket_prop(name: str) -> str:
        return UNKNOWN_STRING_VALUE if preview and name == REPLICA else name

    chosen_rule = replication_rule if replication_rule is not None else rule()
    if preview and chosen_rule:
        chosen_rule = {**chosen_rule, "destination": {"bucket": UNKNOWN_STRING_VALUE}}
    resources = [source, replica]
    resources.append(
        policy_resource(
            REPLICATION,
            "backups-replication",
            {"bucket": SOURCE, "rules": [chosen_rule] if chosen_rule else []},
            property_dependencies={"bucket": [source], "rules": [replica]},
        )
    )
    resources.append(
        policy_resource(
            LIFECYCLE,
            "backups",
            {
                "bucket": SOURCE,
                "rules": [{"status": "Enabled", "expiration": {"days": expiry_days}}],
            },
        )
    )
    chosen_lock = (
        lock
        if lock is not None
        else {"rule": {"defaultRetention": {"mode": "COMPLIANCE", "days": 35}}}
    )
    if chosen_lock:
        resources.append(
            policy_resource(
                LOCK,
                "backups-replica",
                {**chosen_lock, "bucket": bucket_prop(REPLICA)},
                **on(replica, REPLICA),
            )
        )
    for name, bucket, override in (
        (SOURCE, source, source_policy),
        (REPLICA, replica, replica_policy),
    ):
        props = override if override is not None else protection(name)
        if props:
            resources.append(
                policy_resource(
                    POLICY,
                    f"{bucket.name}-policy",
                    {**props, "bucket": bucket_prop(name)},
                    **on(bucket, name),
                )
            )
    return resources


def messages(policy: Any, resources: list[PolicyResource]) -> list[str]:
    return [reported.message for reported in check_stack(policy, resources)]


def test_the_rules_are_mandatory_and_in_the_pack() -> None:
    from policies.registry import POLICIES_BY_NAME

    for policy in backups.POLICIES:
        assert policy.enforcement_level == EnforcementLevel.MANDATORY
        assert POLICIES_BY_NAME[policy.name] is policy


@pytest.mark.parametrize("preview", [False, True], ids=["recorded", "preview"])
@pytest.mark.parametrize("policy", backups.POLICIES, ids=lambda p: p.name)
def test_the_programs_shape_complies(policy: Any, preview: bool) -> None:
    assert messages(policy, stack(preview=preview)) == []


def test_replicated_delete_markers_are_caught() -> None:
    found = messages(
        backups.NO_DELETE_MARKER_REPLICATION,
        stack(replication_rule=rule(deleteMarkerReplication={"status": "Enabled"})),
    )
    assert found == [
        "'backups-replication' rule 'replicate-dumps' replicates delete markers: one delete in "
        'the source would hide the copy too; set deleteMarkerReplication.status to "Disabled".'
    ]


@pytest.mark.parametrize("preview", [False, True], ids=["recorded", "preview"])
def test_a_replica_without_object_lock_is_caught(preview: bool) -> None:
    (found,) = messages(backups.REPLICA_OBJECT_LOCK, stack(lock={}, preview=preview))
    assert "bucket 'backups-replica' receives replicas" in found
    assert "without Object Lock" in found
    assert "at least 30 days" in found


@pytest.mark.parametrize(
    ("lock", "expiry", "shown"),
    [
        ({"rule": {"defaultRetention": {"mode": "COMPLIANCE", "days": 7}}}, 30, "COMPLIANCE 7"),
        ({"rule": {"defaultRetention": {"mode": "COMPLIANCE", "days": 35}}}, 90, "COMPLIANCE 35"),
        ({"rule": {}}, 30, "unset 0"),
        ({"rule": {"defaultRetention": {"mode": "BOGUS", "years": 1}}}, 30, "BOGUS 365"),
    ],
)
def test_a_short_or_missing_retention_is_caught(
    lock: dict[str, Any], expiry: int, shown: str
) -> None:
    (found,) = messages(backups.REPLICA_OBJECT_LOCK, stack(lock=lock, expiry_days=expiry))
    assert f"default retention {shown} days" in found
    assert f"at least {expiry} days" in found


def test_a_retention_in_years_counts() -> None:
    lock = {"rule": {"defaultRetention": {"mode": "GOVERNANCE", "years": 1}}}
    assert messages(backups.REPLICA_OBJECT_LOCK, stack(lock=lock, expiry_days=300)) == []


@pytest.mark.parametrize("side", ["source", "replica"])
def test_a_backup_bucket_without_a_policy_is_caught(side: str) -> None:
    resources = stack(**{f"{side}_policy": {}})  # type: ignore[arg-type]
    (found,) = messages(backups.BREAK_GLASS_ONLY, resources)
    assert "has no bucket policy" in found


@pytest.mark.parametrize(
    ("changes", "missing"),
    [
        ({"Effect": "Allow"}, "s3:DeleteObjectVersion"),
        ({"Principal": {"AWS": "arn:aws:iam::111122223333:role/ci"}}, "s3:DeleteObjectVersion"),
        ({"Action": ["s3:DeleteObject"]}, "s3:DeleteObjectVersion"),
        # Denied only when MFA is absent: any role with MFA could still delete.
        ({"Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}, "s3:DeleteObjectVer"),
    ],
)
def test_deletes_allowed_to_others_are_caught(changes: dict[str, Any], missing: str) -> None:
    (found,) = messages(
        backups.BREAK_GLASS_ONLY, stack(replica_policy=protection(REPLICA, **changes))
    )
    assert found.startswith("'backups-replica-policy' on backup bucket 'backups-replica': ")
    assert missing in found


def test_a_policy_that_lets_anyone_change_the_lifecycle_is_caught() -> None:
    document = json.loads(protection(SOURCE)["policy"])
    document["Statement"] = document["Statement"][1:]
    props = {"bucket": SOURCE, "policy": json.dumps(document)}
    (found,) = messages(backups.BREAK_GLASS_ONLY, stack(source_policy=props))
    assert "s3:PutLifecycleConfiguration not denied" in found
    assert "s3:DeleteObjectVersion" not in found.split("not denied")[0]


def test_a_bucket_without_replication_is_not_judged() -> None:
    resources = [r for r in stack() if r.resource_type != REPLICATION]
    for policy in backups.POLICIES:
        assert messages(policy, [*resources[:1], *resources[3:4]]) == []
