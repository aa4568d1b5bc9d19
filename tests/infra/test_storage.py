"""ECR and the S3 backup bucket per stack: immutable, scanned, encrypted, private, expiring."""

from __future__ import annotations

import json

from infra.config import StackConfig
from tests.infra.support import as_list, document
from tools.plan.mocks import ACCOUNT_ID
from tools.plan.offline import OfflineRun, RecordedResource

BUCKET = "aws:s3/bucket:Bucket"


def test_repository_immutable_scanned_and_kms_encrypted(run: OfflineRun) -> None:
    repository = run.one("aws:ecr/repository:Repository")
    assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
    assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    (encryption,) = repository.inputs["encryptionConfigurations"]
    assert encryption["encryptionType"] == "KMS"
    keys = {k.outputs["arn"] for k in run.of_type("aws:kms/key:Key")}
    assert encryption["kmsKey"] in keys
    assert repository.inputs["forceDelete"] is False


def test_lifecycle_keeps_the_last_n_images(run: OfflineRun, config: StackConfig) -> None:
    policy = run.one("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    repository = run.one("aws:ecr/repository:Repository")
    assert policy.inputs["repository"] == repository.outputs["name"]
    rules = json.loads(policy.inputs["policy"])["rules"]
    keep = next(r for r in rules if r["selection"]["countType"] == "imageCountMoreThan")
    assert keep["selection"]["countNumber"] == config.registry.keep_images
    assert keep["selection"]["tagStatus"] == "any"
    assert [r["rulePriority"] for r in rules] == sorted({r["rulePriority"] for r in rules})


def _attached(run: OfflineRun, type_: str, bucket: RecordedResource) -> RecordedResource:
    (found,) = [r for r in run.of_type(type_) if r.inputs["bucket"] == bucket.id]
    return found


def _primary_bucket(run: OfflineRun, stack: str) -> RecordedResource:
    (bucket,) = [b for b in run.of_type(BUCKET) if b.name == f"agent-{stack}-backups"]
    return bucket


def _check_protected(run: OfflineRun, bucket: RecordedResource) -> None:
    versioning = _attached(run, "aws:s3/bucketVersioning:BucketVersioning", bucket)
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"

    sse = _attached(
        run,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        bucket,
    )
    (rule,) = sse.inputs["rules"]
    default = rule["applyServerSideEncryptionByDefault"]
    assert default["sseAlgorithm"] == "aws:kms"
    keys = {k.outputs["arn"]: k for k in run.of_type("aws:kms/key:Key")}
    assert keys[default["kmsMasterKeyId"]].inputs["enableKeyRotation"] is True
    assert rule["bucketKeyEnabled"] is True

    block = _attached(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket)
    for setting in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block.inputs[setting] is True, setting

    ownership = _attached(run, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", bucket)
    assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"

    policy = _attached(run, "aws:s3/bucketPolicy:BucketPolicy", bucket)
    statements = document(policy, "policy")["Statement"]
    insecure = next(s for s in statements if s["Sid"] == "DenyInsecureTransport")
    assert insecure["Effect"] == "Deny"
    assert insecure["Principal"] == "*"
    assert insecure["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    arn = bucket.outputs["arn"]
    assert set(as_list(insecure["Resource"])) == {arn, f"{arn}/*"}
    assert all(s["Effect"] == "Deny" for s in statements)
    assert block.urn in policy.depends_on


def test_backup_bucket_versioned_encrypted_private_tls_only(run: OfflineRun, stack: str) -> None:
    bucket = _primary_bucket(run, stack)
    assert bucket.inputs["forceDestroy"] is False
    _check_protected(run, bucket)


def test_backups_expire_after_30_days_by_default(run: OfflineRun, stack: str) -> None:
    bucket = _primary_bucket(run, stack)
    lifecycle = _attached(
        run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", bucket
    )
    (rule,) = lifecycle.inputs["rules"]
    assert rule["status"] == "Enabled"
    assert rule["expiration"]["days"] == 30
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == 7
    assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 1


def test_cross_region_replication_only_in_prod(run: OfflineRun, stack: str) -> None:
    replications = run.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    if stack != "prod":
        assert replications == []
        assert len(run.of_type(BUCKET)) == 1
        assert len(run.of_type("pulumi:providers:aws")) == 1
        return
    (replication,) = replications
    primary = _primary_bucket(run, stack)
    (replica,) = [b for b in run.of_type(BUCKET) if b.name.endswith("-replica")]
    assert replication.inputs["bucket"] == primary.id
    (rule,) = replication.inputs["rules"]
    assert rule["status"] == "Enabled"
    assert rule["destination"]["bucket"] == replica.outputs["arn"]
    replica_key = rule["destination"]["encryptionConfiguration"]["replicaKmsKeyId"]
    assert replica_key.startswith("arn:aws:kms:eu-central-1:")
    assert rule["sourceSelectionCriteria"]["sseKmsEncryptedObjects"]["status"] == "Enabled"
    # The replica lives in the second region, through the second provider.
    providers = {p.urn: p for p in run.of_type("pulumi:providers:aws")}
    assert providers[replica.provider.rsplit("::", 1)[0]].inputs["region"] == "eu-central-1"
    assert providers[primary.provider.rsplit("::", 1)[0]].inputs["region"] == "eu-west-1"
    _check_protected(run, replica)
    versionings = {v.urn for v in run.of_type("aws:s3/bucketVersioning:BucketVersioning")}
    assert versionings <= set(replication.depends_on)


def test_the_replica_cannot_be_deleted_in_prod(run: OfflineRun, stack: str) -> None:
    """Object Lock (COMPLIANCE, >= the dumps' expiry) on the replica, no delete markers or
    deletions replicated, and only the break-glass role may delete versions or loosen the
    protection, in both buckets."""
    if stack != "prod":
        assert (
            run.of_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration") == []
        )
        return
    (replica,) = [b for b in run.of_type(BUCKET) if b.name.endswith("-replica")]
    assert replica.inputs["objectLockEnabled"] is True
    lock = _attached(
        run, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", replica
    )
    retention = lock.inputs["rule"]["defaultRetention"]
    assert retention["mode"] == "COMPLIANCE"
    assert retention["days"] >= 30
    (replication,) = run.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    (rule,) = replication.inputs["rules"]
    assert rule["deleteMarkerReplication"] == {"status": "Disabled"}
    (role_policy,) = [
        p
        for p in run.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.name.endswith("-backups-replication")
    ]
    actions = {
        action
        for statement in document(role_policy, "policy")["Statement"]
        for action in as_list(statement["Action"])
    }
    assert "s3:ReplicateDelete" not in actions
    (break_glass_role,) = [
        r for r in run.of_type("aws:iam/role:Role") if r.inputs.get("name") == "backup-break-glass"
    ]
    break_glass = break_glass_role.outputs["arn"]
    assert break_glass == f"arn:aws:iam::{ACCOUNT_ID}:role/backup-break-glass"
    for bucket, extra in ((_primary_bucket(run, stack), set()), (replica, {"s3:DeleteObject"})):
        policy = _attached(run, "aws:s3/bucketPolicy:BucketPolicy", bucket)
        statements = {s["Sid"]: s for s in document(policy, "policy")["Statement"]}
        deletes = statements["OnlyBreakGlassDeletesBackups"]
        changes = statements["OnlyBreakGlassChangesProtection"]
        for statement in (deletes, changes):
            assert statement["Effect"] == "Deny"
            assert statement["Principal"] == "*"
            assert statement["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": break_glass}}
        assert {"s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"} | extra <= set(
            as_list(deletes["Action"])
        )
        assert ("s3:DeleteObject" in as_list(deletes["Action"])) == bool(extra)
        assert {
            "s3:PutLifecycleConfiguration",
            "s3:PutReplicationConfiguration",
            "s3:PutBucketPolicy",
        } <= set(as_list(changes["Action"]))


def test_a_dr_restore_role_reads_the_replica_and_its_key(run: OfflineRun, stack: str) -> None:
    roles = [r for r in run.of_type("aws:iam/role:Role") if r.name.endswith("-dr-restore")]
    if stack != "prod":
        assert roles == []
        return
    (replica,) = [b for b in run.of_type(BUCKET) if b.name.endswith("-replica")]
    (policy,) = [
        p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("-dr-restore")
    ]
    statements = {s["Sid"]: s for s in document(policy, "policy")["Statement"]}
    assert as_list(statements["ReadReplica"]["Resource"]) == [f"{replica.outputs['arn']}/*"]
    # The trust names a principal the stack itself creates: IAM refuses a trust policy whose
    # principal does not exist ("Invalid principal in policy").
    (restore_role,) = roles
    (trust,) = document(restore_role, "assumeRolePolicy")["Statement"]
    (break_glass,) = [
        r for r in run.of_type("aws:iam/role:Role") if r.inputs.get("name") == "backup-break-glass"
    ]
    assert trust["Principal"] == {"AWS": break_glass.outputs["arn"]}
    assert trust["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    (key_arn,) = as_list(statements["DecryptReplica"]["Resource"])
    assert key_arn.startswith("arn:aws:kms:eu-central-1:")
    every = {a for s in statements.values() for a in as_list(s["Action"])}
    assert not any(action.startswith(("s3:Delete", "s3:Put")) for action in every)


def test_the_break_glass_role_needs_mfa_and_can_only_run_the_runbooks(
    run: OfflineRun, stack: str
) -> None:
    roles = [
        r for r in run.of_type("aws:iam/role:Role") if r.inputs.get("name") == "backup-break-glass"
    ]
    if stack != "prod":
        # prod-dr names prod's role (IAM is global); creating it twice would collide.
        assert roles == []
        return
    (role,) = roles
    (trust,) = document(role, "assumeRolePolicy")["Statement"]
    assert trust["Principal"] == {"AWS": [f"arn:aws:iam::{ACCOUNT_ID}:root"]}
    assert trust["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    (policy,) = [
        p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == "backup-break-glass"
    ]
    statements = document(policy, "policy")["Statement"]
    buckets = {b.outputs["arn"] for b in run.of_type(BUCKET)}
    (restore,) = [r for r in run.of_type("aws:iam/role:Role") if r.name.endswith("-dr-restore")]
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for resource in as_list(statement["Resource"]):
            assert resource.removesuffix("/*") in buckets | {restore.outputs["arn"]}
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert "s3:DeleteObjectVersion" in actions
    assert not any(a.endswith("*") for a in actions)


def test_each_bucket_policy_comes_after_every_setting_it_protects(
    run: OfflineRun, stack: str
) -> None:
    """The policy denies Put{Replication,Lifecycle,Versioning,ObjectLock}Configuration to all
    but break glass, the deployer included: put first, it would fail those puts on the first
    deploy. Replication is configured on the source bucket, so its policy waits for it too."""
    replication = run.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    for bucket in run.of_type(BUCKET):
        policy = _attached(run, "aws:s3/bucketPolicy:BucketPolicy", bucket)
        settings = [
            _attached(run, type_, bucket)
            for type_ in (
                "aws:s3/bucketVersioning:BucketVersioning",
                "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            )
        ]
        settings += [
            r
            for r in [
                *run.of_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"),
                *replication,
            ]
            if r.inputs["bucket"] == bucket.id
        ]
        for setting in settings:
            assert setting.urn in policy.depends_on, (bucket.name, setting.type, stack)
    if stack == "prod":
        (config,) = replication
        assert config.inputs["bucket"] == _primary_bucket(run, stack).id
