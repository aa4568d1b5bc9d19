"""The copies prod keeps in its DR region, the point-in-time restore setting, and the DR stack
(Pulumi.prod-dr.yaml) that rebuilds the platform there from those copies only."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from infra.config import StackConfigError
from tests.infra.support import by_name, offline_run
from tools.plan.mocks import ACCOUNT_ID
from tools.plan.offline import OfflineRun, RecordedResource, run_offline, stack_config_values

DR_REGION = "eu-central-1"
INSTANCE = "aws:rds/instance:Instance"
KEY = "aws:kms/key:Key"


def _region_of(run: OfflineRun, resource: RecordedResource) -> str:
    providers = {p.urn: p for p in run.of_type("pulumi:providers:aws")}
    region: str = providers[resource.provider.rsplit("::", 1)[0]].inputs["region"]
    return region


def _key_region(run: OfflineRun, arn: str) -> str:
    (key,) = [k for k in run.of_type(KEY) if k.outputs["arn"] == arn]
    return _region_of(run, key)


def test_prod_replicates_automated_backups_to_the_dr_region() -> None:
    run = offline_run("prod")
    primary = by_name(run, INSTANCE)["agent-prod-db"]
    (replication,) = run.of_type(
        "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"
    )
    # Created in the destination region, from the primary, encrypted with a key there.
    assert _region_of(run, replication) == DR_REGION
    assert replication.inputs["sourceDbInstanceArn"] == primary.outputs["arn"]
    assert _key_region(run, replication.inputs["kmsKeyId"]) == DR_REGION
    assert replication.inputs["retentionPeriod"] == primary.inputs["backupRetentionPeriod"]


def test_prod_replicates_its_images_and_service_secret() -> None:
    run = offline_run("prod")
    (ecr,) = run.of_type("aws:ecr/replicationConfiguration:ReplicationConfiguration")
    (rule,) = ecr.inputs["replicationConfiguration"]["rules"]
    (destination,) = rule["destinations"]
    assert destination["region"] == DR_REGION
    (repository,) = run.of_type("aws:ecr/repository:Repository")
    assert rule["repositoryFilters"] == [
        {"filter": repository.inputs["name"], "filterType": "PREFIX_MATCH"}
    ]
    secret = by_name(run, "aws:secretsmanager/secret:Secret")["agent-prod-service-secret"]
    (replica,) = secret.inputs["replicas"]
    assert replica["region"] == DR_REGION
    assert _key_region(run, replica["kmsKeyId"]) == DR_REGION


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_other_stacks_copy_nothing_to_another_region(stack: str) -> None:
    run = offline_run(stack)
    assert len(run.of_type("pulumi:providers:aws")) == 1
    assert not run.of_type("aws:ecr/replicationConfiguration:ReplicationConfiguration")
    assert not run.of_type(
        "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"
    )


def _with(stack: str, key: str, change: Mapping[str, object]) -> OfflineRun:
    values, secret_keys = stack_config_values(stack)
    block = json.loads(values[key])
    block.update(change)
    return run_offline(
        stack, config={**values, key: json.dumps(block)}, secret_keys=list(secret_keys)
    )


@pytest.mark.parametrize("serve", [False, True])
def test_point_in_time_restore_adds_an_instance_and_can_serve_it(serve: bool) -> None:
    when = "2026-11-30T02:13:22Z"
    run = _with(
        "staging",
        "agent-platform:database",
        {"pointInTimeRestore": {"restoreTime": when, "serve": serve}},
    )
    instances = by_name(run, INSTANCE)
    primary, restored = instances["agent-staging-db"], instances["agent-staging-db-pitr"]
    restore = restored.inputs["restoreToPointInTime"]
    assert restore["sourceDbInstanceIdentifier"] == primary.outputs["identifier"]
    assert restore["restoreTime"] == when
    # Next to the primary: same subnets, firewall, TLS parameters and key; its own secret.
    for same in ("dbSubnetGroupName", "vpcSecurityGroupIds", "parameterGroupName", "kmsKeyId"):
        assert restored.inputs[same] == primary.inputs[same], same
    assert restored.inputs["manageMasterUserPassword"] is True
    assert restored.inputs["databaseInsightsMode"] == primary.inputs["databaseInsightsMode"]
    assert restored.inputs["databaseInsightsMode"] == "standard"
    assert restored.inputs["skipFinalSnapshot"] is False
    served = restored if serve else primary
    assert run.outputs["databaseEndpoint"] == f"{served.outputs['address']}:5432"
    assert run.outputs["restoredDatabase"] == "agent-staging-db-pitr"
    secret = served.outputs["masterUserSecrets"][0]["secretArn"]
    assert run.outputs["databaseMasterSecretArn"] == secret


def test_a_restore_time_rds_would_not_take_names_the_key() -> None:
    with pytest.raises(StackConfigError, match=r"database\.pointInTimeRestore\.restoreTime"):
        _with(
            "staging",
            "agent-platform:database",
            {"pointInTimeRestore": {"restoreTime": "yesterday 14:00"}},
        )


def test_replicated_backups_need_a_dr_region() -> None:
    with pytest.raises(StackConfigError, match="replicateBackups needs"):
        _with("staging", "agent-platform:database", {"replicateBackups": True})


def test_the_dr_stack_is_built_from_the_copies_only() -> None:
    run = offline_run("prod-dr")
    values, _ = stack_config_values("prod-dr")
    recovery = json.loads(values["agent-platform:recovery"])
    (provider,) = run.of_type("pulumi:providers:aws")
    assert provider.inputs["region"] == DR_REGION
    # The database: the replicated automated backups at their latest restorable time.
    db = by_name(run, INSTANCE)["agent-prod-db"]
    restore = db.inputs["restoreToPointInTime"]
    assert restore["sourceDbInstanceAutomatedBackupsArn"] == (
        f"arn:aws:rds:{DR_REGION}:{ACCOUNT_ID}:auto-backup:{recovery['automatedBackupsId']}"
    )
    assert restore["useLatestRestorableTime"] is True
    assert "username" not in db.inputs
    # Images from the ECR replica: no repository of its own, the replica's address.
    assert not run.of_type("aws:ecr/repository:Repository")
    assert run.outputs["repositoryUrl"] == (
        f"{ACCOUNT_ID}.dkr.ecr.{DR_REGION}.amazonaws.com/{recovery['repositoryName']}"
    )
    # The API keys from the Secrets Manager replica: read, not created.
    secret_arn = (
        f"arn:aws:secretsmanager:{DR_REGION}:{ACCOUNT_ID}:secret:{recovery['serviceSecretName']}"
    )
    key_arn = f"arn:aws:kms:{DR_REGION}:{ACCOUNT_ID}:key/{recovery['serviceSecretKeyId']}"
    assert run.outputs["serviceSecretArn"] == secret_arn
    assert "agent-prod-service-secret" not in by_name(run, "aws:secretsmanager/secret:Secret")
    role_policies = run.of_type("aws:iam/rolePolicy:RolePolicy")
    (service,) = [p for p in role_policies if p.name.endswith("-service")]
    text = service.inputs["policy"]
    assert secret_arn in text
    assert key_arn in text
    # Nothing is copied onward from the DR stack (its region is the last one standing).
    assert not run.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
