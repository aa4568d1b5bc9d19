"""Region loss, with the backups attacked first: the newest dump is deleted in the primary
bucket, the region is then lost, and a second, independent environment (its own PostgreSQL,
Redis and S3 "region") is built from the replica bucket and the replicated secrets only.

Follows docs/runbooks/region-loss.md and docs/runbooks/backup-deletion.md (local sections).

The replica bucket is what infra/backups.py creates in the DR region: Object Lock on, a
COMPLIANCE default retention, versioned. moto implements Object Lock (a locked version cannot
be deleted, not even with BypassGovernanceRetention) but not S3 Replication between two
servers; `replicate` copies what S3 Replication would, with its documented rules: new object
versions are replicated, delete markers only when delete-marker replication is on (it is off
here and in infra), and deletions of a version id are never replicated
(docs.aws.amazon.com/AmazonS3/latest/userguide/replication-what-is-isnt-replicated.html).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from agent_service.dr.errors import DrError
from agent_service.dr.storage import MANIFEST_SUFFIX
from botocore.exceptions import ClientError

from tools.drill.commands import restore_into, take_backup
from tools.drill.dataset import differences, snapshot, write_dataset
from tools.drill.instance import service_on
from tools.drill.target import Target
from tools.kit.programs import require_program
from tools.kit.s3 import CREDENTIALS, s3_server
from tools.kit.servers import PostgresServer, RedisServer

RUNBOOKS = "docs/runbooks/region-loss.md, docs/runbooks/backup-deletion.md"
DR_REGION = "eu-central-1"
REPLICA_BUCKET = "agent-backups-replica"
# At least the primary's retention (30 days of dumps): a locked copy outlives the original.
REPLICA_RETENTION_DAYS = 35
SOURCE_VERSION = "source-version-id"


def _client(endpoint_url: str, region: str, keys: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
    )


def create_replica_bucket(client: Any, name: str = REPLICA_BUCKET) -> str:
    """Object Lock can only be turned on when the bucket is created; versioning comes with it."""
    client.create_bucket(
        Bucket=name,
        CreateBucketConfiguration={"LocationConstraint": DR_REGION},
        ObjectLockEnabledForBucket=True,
    )
    client.put_object_lock_configuration(
        Bucket=name,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": REPLICA_RETENTION_DAYS}},
        },
    )
    return name


def replicate(source: Any, bucket: str, prefix: str, replica: Any, replica_bucket: str) -> int:
    """Copy every object version under `prefix` not yet in the replica; delete markers are
    skipped (delete-marker replication off). Returns the versions copied."""
    done = set()
    for page in replica.get_paginator("list_object_versions").paginate(Bucket=replica_bucket):
        for version in page.get("Versions", []):
            head = replica.head_object(
                Bucket=replica_bucket, Key=version["Key"], VersionId=version["VersionId"]
            )
            done.add(head.get("Metadata", {}).get(SOURCE_VERSION))
    copied = 0
    pages = source.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for version in sorted(page.get("Versions", []), key=lambda item: item["LastModified"]):
            if version["VersionId"] in done:
                continue
            body = source.get_object(
                Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"]
            )["Body"]
            replica.upload_fileobj(
                body,
                replica_bucket,
                version["Key"],
                ExtraArgs={"Metadata": {SOURCE_VERSION: version["VersionId"]}},
            )
            copied += 1
    return copied


def delete_everywhere(client: Any, bucket: str, key: str) -> int:
    """What an attacker with the backup role's rights does to a backup: every version of the
    dump and its manifest deleted. Returns the versions deleted."""
    deleted = 0
    for name in (key, key + MANIFEST_SUFFIX):
        listed = client.list_object_versions(Bucket=bucket, Prefix=name)
        for version in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
            if version["Key"] == name:
                client.delete_object(Bucket=bucket, Key=name, VersionId=version["VersionId"])
                deleted += 1
    return deleted


def refused_delete(client: Any, bucket: str, key: str) -> str:
    """Try to delete the replica's version of `key` for good; returns the refusal's code."""
    versions = client.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    if not versions:
        raise DrError(f"the replica bucket has no copy of {key}")
    try:
        client.delete_object(
            Bucket=bucket,
            Key=key,
            VersionId=versions[0]["VersionId"],
            BypassGovernanceRetention=True,
        )
    except ClientError as exc:
        return str(exc.response.get("Error", {}).get("Code", "refused"))
    raise DrError(f"the replica's copy of {key} was deleted: Object Lock did not hold")


def replicated_secrets(secrets_dir: Path, into: Path) -> Path:
    """The DR region's copy of the service secret (Secrets Manager replica in AWS)."""
    copy = into / "secrets"
    shutil.copytree(secrets_dir, copy)
    return copy


def run_region_loss(target: Target, work_dir: Path) -> dict[str, Any]:
    threads = asyncio.run(write_dataset(target.agent_url, target.api_keys))
    expected = asyncio.run(snapshot(target.agent_url, target.api_keys, threads))
    env = target.service_env
    primary = _client(env["S3_ENDPOINT_URL"], env["AWS_REGION"], dict(env))
    taken = take_backup(env)
    # The DR region's S3 runs in this process: its request log is not the drill's output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with s3_server() as dr_s3:
        replica = _client(dr_s3.endpoint_url, DR_REGION, CREDENTIALS)
        replica_bucket = create_replica_bucket(replica)
        replicate(primary, target.bucket, target.prefix, replica, replica_bucket)
        # The attack: the newest backup deleted in the primary bucket, all its versions.
        deleted = delete_everywhere(primary, target.bucket, taken.key)
        # Replication runs on; a deleted version is not replicated, the replica keeps its copy.
        replicate(primary, target.bucket, target.prefix, replica, replica_bucket)
        refusal = refused_delete(replica, replica_bucket, taken.key)

        # The primary region is gone: from here on only the DR region's copies are used.
        restore_started_at = datetime.now(UTC)
        restore_started = time.monotonic()
        root = Path(tempfile.mkdtemp(prefix="dr-region-", dir=work_dir))
        postgres = PostgresServer()
        redis = RedisServer()
        try:
            postgres.init().start()
            secrets = replicated_secrets(Path(env["SECRETS_DIR"]), root)
            password_file = secrets / "redis_password"
            redis_password = password_file.read_text().strip() if password_file.exists() else None
            redis.start(password=redis_password)
            dr_env = {
                "PATH": env["PATH"],
                "HOME": env["HOME"],
                "SECRETS_DIR": str(secrets),
                "PG_BIN_DIR": str(Path(require_program("pg_restore")).parent),
                "AWS_REGION": DR_REGION,
                "S3_ENDPOINT_URL": dr_s3.endpoint_url,
                "BACKUP_BUCKET": replica_bucket,
                "BACKUP_PREFIX": target.prefix,
                **CREDENTIALS,
            }
            database_url = postgres.url("agent")
            restored = restore_into({**dr_env, "DATABASE_URL": database_url}, database_url, None)
            restore_seconds = time.monotonic() - restore_started
            redis_url = f"redis://127.0.0.1:{redis.port}/0"
            log = work_dir / f"region_loss_{datetime.now(UTC):%Y%m%d%H%M%S}.log"
            with service_on(dr_env, database_url, log, redis_url=redis_url) as url:
                rto = time.monotonic() - restore_started
                actual = asyncio.run(snapshot(url, target.api_keys, threads))
        finally:
            redis.destroy()
            postgres.destroy()
            shutil.rmtree(root, ignore_errors=True)
    mismatches = differences(expected, actual)
    if restored["key"] != taken.key:
        mismatches.append(f"restored {restored['key']}, not the newest backup {taken.key}")
    backup_time = datetime.fromisoformat(restored["created_at"])
    return {
        "drill": "ok" if not mismatches else "mismatch",
        "scenario": "region-loss",
        "runbook": RUNBOOKS,
        "users": len(threads),
        "threads": len(expected.threads),
        "checkpoints": expected.checkpoints,
        "store_items": expected.store_items,
        "mismatches": mismatches,
        "deleted_primary_key": taken.key,
        "deleted_primary_versions": deleted,
        "replica_bucket": f"{DR_REGION}/{replica_bucket}",
        "replica_delete_refused": refusal,
        "backup_key": restored["key"],
        "restored_rows": restored["rows"],
        "rpo_seconds": round((restore_started_at - backup_time).total_seconds(), 3),
        "restore_seconds": round(restore_seconds, 3),
        "rto_seconds": round(rto, 3),
    }
