"""RDS: encryption, privacy, backup retention, and production-only protection and multi-AZ."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from policies import rds
from policies.config import PolicyConfigError
from tests.policies.support import check, resource_args

PRIMARY: dict[str, Any] = {
    "engine": "postgres",
    "storageEncrypted": True,
    "kmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/abc",
    "publiclyAccessible": False,
    "backupRetentionPeriod": 30,
    "deletionProtection": True,
    "multiAz": True,
}
REPLICA: dict[str, Any] = {
    "replicateSourceDb": "agent-db",
    "storageEncrypted": True,
    "publiclyAccessible": False,
    "backupRetentionPeriod": 0,
    "deletionProtection": True,
    "multiAz": False,
}


def test_every_rds_rule_is_mandatory() -> None:
    assert {policy.enforcement_level for policy in rds.POLICIES} == {EnforcementLevel.MANDATORY}


RESOURCE_POLICIES = [p for p in rds.POLICIES if isinstance(p, ResourceValidationPolicy)]


@pytest.mark.parametrize("policy", RESOURCE_POLICIES, ids=lambda p: p.name)
@pytest.mark.parametrize("props", [PRIMARY, REPLICA], ids=["primary", "replica"])
def test_a_production_primary_and_its_replica_comply(policy: Any, props: dict[str, Any]) -> None:
    assert check(policy, resource_args(rds.INSTANCE, props, stack="prod")) == []


@pytest.mark.parametrize(
    ("policy", "change", "expected"),
    [
        (rds.STORAGE_ENCRYPTED, {"storageEncrypted": False}, "storage_encrypted=True"),
        (rds.STORAGE_ENCRYPTED, {"storageEncrypted": None}, "unencrypted"),
        (rds.NOT_PUBLIC, {"publiclyAccessible": True}, "publicly accessible"),
        (rds.BACKUP_RETENTION, {"backupRetentionPeriod": 1}, "for 1 days"),
        (rds.BACKUP_RETENTION, {"backupRetentionPeriod": None}, "unset"),
        (rds.DELETION_PROTECTION, {"deletionProtection": False}, "deletion_protection=True"),
        (rds.MULTI_AZ, {"multiAz": False}, "multi_az=True"),
    ],
    ids=lambda value: value.name if hasattr(value, "name") else None,
)
def test_a_violating_instance_is_reported_by_name(
    policy: Any, change: dict[str, Any], expected: str
) -> None:
    props = {key: value for key, value in {**PRIMARY, **change}.items() if value is not None}
    messages = check(policy, resource_args(rds.INSTANCE, props, name="agent-db"))
    assert len(messages) == 1
    assert "'agent-db'" in messages[0]
    assert expected in messages[0]


def test_production_rules_leave_other_stacks_alone() -> None:
    single_az = {**PRIMARY, "multiAz": False, "deletionProtection": False}
    for stack in ("dev", "staging"):
        args = resource_args(rds.INSTANCE, single_az, stack=stack)
        assert check(rds.MULTI_AZ, args) == []
        assert check(rds.DELETION_PROTECTION, args) == []


def test_the_production_stacks_come_from_config() -> None:
    single_az = {**PRIMARY, "multiAz": False}
    config = {"productionStacks": ["staging", "prod"]}
    args = resource_args(rds.INSTANCE, single_az, stack="staging", config=config)
    assert len(check(rds.MULTI_AZ, args)) == 1


def test_a_urn_without_a_stack_is_held_to_production_rules() -> None:
    args = resource_args(
        rds.INSTANCE, {**PRIMARY, "multiAz": False}, resource_urn="not-a-pulumi-urn"
    )
    assert len(check(rds.MULTI_AZ, args)) == 1


def test_the_retention_threshold_comes_from_config_even_as_a_protobuf_float() -> None:
    week = {**PRIMARY, "backupRetentionPeriod": 7}
    assert check(rds.BACKUP_RETENTION, resource_args(rds.INSTANCE, week)) == []
    args = resource_args(rds.INSTANCE, week, config={"minBackupRetentionDays": 14.0})
    assert check(rds.BACKUP_RETENTION, args) == [
        "'subject' keeps automated backups for 7 days: set backup_retention_period to at least 14."
    ]


def test_a_malformed_threshold_fails_naming_the_setting() -> None:
    args = resource_args(rds.INSTANCE, PRIMARY, config={"minBackupRetentionDays": "a week"})
    with pytest.raises(PolicyConfigError, match="'minBackupRetentionDays' must be an integer"):
        check(rds.BACKUP_RETENTION, args)


def test_aurora_clusters_and_their_instances_are_covered() -> None:
    cluster = {"storageEncrypted": False, "backupRetentionPeriod": 1, "deletionProtection": False}
    args = resource_args(rds.CLUSTER, cluster)
    assert len(check(rds.STORAGE_ENCRYPTED, args)) == 1
    assert len(check(rds.BACKUP_RETENTION, args)) == 1
    assert len(check(rds.DELETION_PROTECTION, args)) == 1
    public = resource_args(rds.CLUSTER_INSTANCE, {"publiclyAccessible": True})
    assert len(check(rds.NOT_PUBLIC, public)) == 1


def test_other_resource_types_are_ignored() -> None:
    args = resource_args("aws:s3/bucket:Bucket", {"storageEncrypted": False})
    assert all(check(policy, args) == [] for policy in RESOURCE_POLICIES)
