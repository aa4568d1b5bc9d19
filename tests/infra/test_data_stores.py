"""RDS PostgreSQL and ElastiCache Redis per stack: private, encrypted, TLS, sized by stack."""

from __future__ import annotations

from agent_service.core.redis_access import APP_USER, access_string

from infra.config import StackConfig
from tests.infra.support import by_name
from tools.plan.offline import OfflineRun, RecordedResource

INSTANCE = "aws:rds/instance:Instance"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"

RETENTION_DAYS = {"dev": 7, "staging": 14, "prod": 30}


def _primary(run: OfflineRun, stack: str) -> RecordedResource:
    return by_name(run, INSTANCE)[f"agent-{stack}-db"]


def _workload_security_group(run: OfflineRun) -> str:
    """The nodes' own group (not the cluster group, which the control plane shares)."""
    (group,) = [
        g
        for g in run.of_type("aws:ec2/securityGroup:SecurityGroup")
        if g.name.endswith("-workloads")
    ]
    return group.id


def _only_from(run: OfflineRun, group_ids: list[str], port: int, sources: list[str]) -> None:
    groups = {g.id: g for g in run.of_type("aws:ec2/securityGroup:SecurityGroup")}
    (group_id,) = group_ids
    rules = groups[group_id].inputs["ingress"]
    assert [rule["securityGroups"] for rule in rules] == [[source] for source in sources]
    for rule in rules:
        assert (rule["fromPort"], rule["toPort"], rule["protocol"]) == (port, port, "tcp")
        assert "cidrBlocks" not in rule
    assert groups[group_id].inputs["egress"] == []


def _only_from_cluster(run: OfflineRun, group_ids: list[str], port: int) -> None:
    _only_from(run, group_ids, port, [_workload_security_group(run)])


def _rotation_group(run: OfflineRun, stack: str) -> RecordedResource:
    return by_name(run, "aws:ec2/securityGroup:SecurityGroup")[f"agent-{stack}-db-rotation"]


def test_postgres_16_private_and_encrypted(run: OfflineRun, stack: str) -> None:
    db = _primary(run, stack)
    assert db.inputs["engine"] == "postgres"
    assert db.inputs["engineVersion"].split(".")[0] == "16"
    assert db.inputs["publiclyAccessible"] is False
    assert db.inputs["storageEncrypted"] is True
    keys = {k.outputs["arn"]: k for k in run.of_type("aws:kms/key:Key")}
    assert keys[db.inputs["kmsKeyId"]].inputs["enableKeyRotation"] is True
    subnets = by_name(run, "aws:rds/subnetGroup:SubnetGroup")[f"agent-{stack}-db"]
    private = {s.id for s in run.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name}
    assert set(subnets.inputs["subnetIds"]) == private
    assert db.inputs["dbSubnetGroupName"] == subnets.outputs["name"]
    # The nodes and the credential rotation function, nothing else.
    rotation = _rotation_group(run, stack)
    _only_from(
        run,
        db.inputs["vpcSecurityGroupIds"],
        5432,
        [_workload_security_group(run), rotation.id],
    )
    assert sorted(rule["fromPort"] for rule in rotation.inputs["egress"]) == [443, 5432]


def test_multi_az_deletion_protection_and_retention_per_stack(
    run: OfflineRun, stack: str, config: StackConfig
) -> None:
    db = _primary(run, stack)
    assert db.inputs["multiAz"] is (stack != "dev")
    assert db.inputs["deletionProtection"] is (stack == "prod")
    assert db.inputs["backupRetentionPeriod"] == RETENTION_DAYS[stack]
    assert config.database.backup_retention_days == RETENTION_DAYS[stack]
    assert db.inputs["skipFinalSnapshot"] is False


def test_password_is_managed_by_aws_never_set(run: OfflineRun, stack: str) -> None:
    db = _primary(run, stack)
    assert db.inputs["manageMasterUserPassword"] is True
    assert "password" not in db.inputs
    assert db.inputs["masterUserSecretKmsKeyId"] == db.inputs["kmsKeyId"]


def test_parameter_group_forces_tls(run: OfflineRun, stack: str) -> None:
    db = _primary(run, stack)
    group = run.one("aws:rds/parameterGroup:ParameterGroup")
    assert group.inputs["family"] == "postgres16"
    assert db.inputs["parameterGroupName"] == group.outputs["name"]
    parameters = {p["name"]: p["value"] for p in group.inputs["parameters"]}
    assert parameters["rds.force_ssl"] == "1"
    assert parameters["ssl_min_protocol_version"] == "TLSv1.2"
    assert db.inputs["caCertIdentifier"] == "rds-ca-rsa2048-g1"


def test_performance_insights_encrypted(run: OfflineRun, stack: str) -> None:
    db = _primary(run, stack)
    assert db.inputs["performanceInsightsEnabled"] is True
    assert db.inputs["performanceInsightsKmsKeyId"] == db.inputs["kmsKeyId"]


def test_minor_upgrades_by_aws_major_never(run: OfflineRun, stack: str) -> None:
    db = _primary(run, stack)
    assert db.inputs["autoMinorVersionUpgrade"] is True
    assert db.inputs["allowMajorVersionUpgrade"] is False
    # AWS moves the minor version; the next `pulumi up` must not try to undo it.
    assert "engineVersion" in db.ignore_changes


def test_no_read_replica_of_a_managed_password_source(run: OfflineRun, stack: str) -> None:
    # RDS refuses a replica of a source whose password Secrets Manager manages (B3).
    assert [r for r in run.of_type(INSTANCE) if r.inputs.get("replicateSourceDb")] == []
    assert _primary(run, stack).inputs["manageMasterUserPassword"] is True


def test_final_snapshot_name_is_unique_per_instance(run: OfflineRun, stack: str) -> None:
    db = _primary(run, stack)
    suffix = run.one("random:index/randomId:RandomId").outputs["hex"]
    assert db.inputs["finalSnapshotIdentifier"] == f"agent-{stack}-db-final-{suffix}"
    assert db.inputs["skipFinalSnapshot"] is False


def test_database_insights_mode_is_stated(run: OfflineRun, stack: str) -> None:
    assert _primary(run, stack).inputs["databaseInsightsMode"] == "standard"


def test_stateful_resources_are_protected_outside_dev(run: OfflineRun, stack: str) -> None:
    stateful = [
        _primary(run, stack),
        run.one(REPLICATION_GROUP),
        run.one("aws:ecr/repository:Repository"),
        *run.of_type("aws:s3/bucket:Bucket"),
    ]
    keys = by_name(run, "aws:kms/key:Key")
    stateful += [keys[f"agent-{stack}-{suffix}"] for suffix in ("db", "cache", "ecr")]
    for resource in stateful:
        assert resource.protect is (stack != "dev"), resource.name


def test_redis_encrypted_in_transit_and_at_rest(run: OfflineRun) -> None:
    redis = run.one(REPLICATION_GROUP)
    assert redis.inputs["transitEncryptionEnabled"] is True
    assert redis.inputs["transitEncryptionMode"] == "required"
    assert redis.inputs["atRestEncryptionEnabled"] is True
    assert redis.inputs["kmsKeyId"].startswith("arn:aws:kms:")
    _only_from_cluster(run, redis.inputs["securityGroupIds"], 6379)


def test_redis_uses_rbac_users_not_an_auth_token(run: OfflineRun, stack: str) -> None:
    redis = run.one(REPLICATION_GROUP)
    assert "authToken" not in redis.inputs
    group = run.one("aws:elasticache/userGroup:UserGroup")
    assert redis.inputs["userGroupIds"] == [group.inputs["userGroupId"]]
    users = {u.inputs["userId"]: u for u in run.of_type("aws:elasticache/user:User")}
    assert set(group.inputs["userIds"]) == set(users)
    by_user_name = {u.inputs["userName"]: u for u in users.values()}
    # The engine's default user must be in every group: switched off.
    assert by_user_name["default"].inputs["accessString"] == "off -@all"
    app = by_user_name[APP_USER]
    assert app.inputs["accessString"] == access_string()
    assert app.inputs["accessString"].startswith("on ")
    assert "~*" not in app.inputs["accessString"].split()
    assert "+@all" not in app.inputs["accessString"].split()
    # Password authentication, the password a Pulumi secret (redacted in the recording).
    assert "authenticationMode" in app.secret_inputs
    assert "authenticationMode" in app.ignore_changes


def test_redis_user_password_is_a_generated_secret_stored_in_secrets_manager(
    run: OfflineRun,
) -> None:
    redis = run.one(REPLICATION_GROUP)
    (password,) = [
        p
        for p in run.of_type("random:index/randomPassword:RandomPassword")
        if p.name.endswith("-cache-app-password")
    ]
    assert password.inputs["length"] >= 32
    # ElastiCache refuses '@', '"' and '/' in a password.
    assert not set(password.inputs["overrideSpecial"]) & set('@"/')
    secrets = {s.outputs["arn"]: s for s in run.of_type("aws:secretsmanager/secret:Secret")}
    version = next(
        v
        for v in run.of_type("aws:secretsmanager/secretVersion:SecretVersion")
        if v.name.endswith("-cache-app-user")
    )
    assert version.secret_inputs == ("secretString",)
    secret = secrets[version.inputs["secretId"]]
    assert secret.inputs["kmsKeyId"] == redis.inputs["kmsKeyId"]


def test_each_workload_has_its_own_rotated_database_login(run: OfflineRun, stack: str) -> None:
    secrets = by_name(run, "aws:secretsmanager/secret:Secret")
    rotations = {
        r.inputs["secretId"]: r
        for r in run.of_type("aws:secretsmanager/secretRotation:SecretRotation")
    }
    (sar,) = run.of_type("aws:serverlessrepository/cloudFormationStack:CloudFormationStack")
    assert sar.inputs["applicationId"].endswith(
        ":applications/SecretsManagerRDSPostgreSQLRotationMultiUser"
    )
    master = _primary(run, stack).outputs["masterUserSecrets"][0]["secretArn"]
    # Only the rotation function reads the master secret.
    assert sar.inputs["parameters"]["masterSecretArn"] == master
    function = sar.outputs["outputs"]["RotationLambdaARN"]
    for workload in ("migrator", "app", "backup", "retention"):
        secret = secrets[f"agent-{stack}-db-{workload}"]
        rotation = rotations[secret.id]
        assert rotation.inputs["rotationLambdaArn"] == function
        assert rotation.inputs["rotationRules"]["automaticallyAfterDays"] == 30
        assert secret.inputs["kmsKeyId"] == _primary(run, stack).inputs["kmsKeyId"]


def test_redis_failover_and_multi_az_per_stack(run: OfflineRun, stack: str) -> None:
    redis = run.one(REPLICATION_GROUP)
    nodes = {"dev": 1, "staging": 2, "prod": 3}[stack]
    assert redis.inputs["numCacheClusters"] == nodes
    assert redis.inputs["automaticFailoverEnabled"] is (stack != "dev")
    assert redis.inputs["multiAzEnabled"] is (stack != "dev")
    subnets = run.one("aws:elasticache/subnetGroup:SubnetGroup")
    private = {s.id for s in run.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name}
    assert set(subnets.inputs["subnetIds"]) == private


def test_instance_sizes_grow_with_the_stack(run: OfflineRun, stack: str) -> None:
    db = _primary(run, stack)
    redis = run.one(REPLICATION_GROUP)
    expected = {
        "dev": ("db.t4g.medium", "cache.t4g.small"),
        "staging": ("db.t4g.large", "cache.t4g.medium"),
        "prod": ("db.r6g.large", "cache.r6g.large"),
    }[stack]
    assert (db.inputs["instanceClass"], redis.inputs["nodeType"]) == expected


def test_exported_database_logs_expire_and_are_encrypted(
    run: OfflineRun, stack: str, config: StackConfig
) -> None:
    db = _primary(run, stack)
    groups = {
        g.inputs["name"]: g
        for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")
        if g.inputs["name"].startswith("/aws/rds/")
    }
    assert set(groups) == {
        f"/aws/rds/instance/{db.inputs['identifier']}/{log}"
        for log in db.inputs["enabledCloudwatchLogsExports"]
    }
    for group in groups.values():
        assert group.inputs["retentionInDays"] == config.database.log_retention_days
        assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:")
        assert group.urn in db.depends_on
    assert config.database.log_retention_days == (365 if stack == "prod" else 30)
