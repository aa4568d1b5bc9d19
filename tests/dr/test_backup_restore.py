"""Backup to S3 and restore from it, against real PostgreSQL and moto's S3 server."""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3
import psycopg
import pytest
from psycopg import sql

from tests.dr.conftest import DrEnv
from tests.dr.dataset import databases, table_count, table_digests, write_dataset
from tools.kit.s3 import CREDENTIALS, REGION

PART = 5 * 1024 * 1024

pytestmark = pytest.mark.integration


def test_round_trip_restores_every_row(dr: DrEnv) -> None:
    source = dr.database()
    threads = write_dataset(source)
    backup = dr.command("backup", database_url=source)
    assert backup.returncode == 0, backup.stderr
    made = backup.report()
    # No KMS key configured: SSE-S3, never an unencrypted object.
    assert made["encryption"] == "AES256"
    assert made["schema_version"] >= 1
    assert len(made["sha256"]) == 64

    target = dr.database(migrated=False)
    restored = dr.command("restore", "--target-url", target)
    assert restored.returncode == 0, restored.stderr
    report = restored.report()
    assert report["key"] == made["key"]
    assert report["created"] is False
    assert report["rows"]["agent_threads"] == len(threads)
    assert report["rows"]["store"] >= len(threads)
    assert table_digests(target) == table_digests(source)

    head = dr.s3.client().head_object(Bucket=dr.bucket, Key=made["key"])
    assert head["Metadata"]["source"].endswith(source.rsplit("/", 1)[-1])
    assert head["Metadata"]["schema-version"] == str(made["schema_version"])


def test_restore_picks_the_newest_complete_backup(dr: DrEnv) -> None:
    source = dr.database()
    first = dr.command("backup", database_url=source).report()
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("CREATE TABLE added_after_first (id int)")
    second = dr.command("backup", database_url=source).report()
    # An upload that never got its manifest is not a backup.
    dr.s3.client().put_object(Bucket=dr.bucket, Key="postgres/99999999T000000Z-x.dump", Body=b"x")
    target = dr.database(migrated=False)
    report = dr.command("restore", "--target-url", target).report()
    assert report["key"] == second["key"] != first["key"]
    assert "added_after_first" in table_digests(target)


def test_a_corrupted_backup_is_refused_and_the_target_untouched(dr: DrEnv) -> None:
    source = dr.database()
    write_dataset(source)
    made = dr.command("backup", database_url=source).report()
    client = dr.s3.client()
    body = bytearray(client.get_object(Bucket=dr.bucket, Key=made["key"])["Body"].read())
    body[len(body) // 2] ^= 0xFF
    client.put_object(Bucket=dr.bucket, Key=made["key"], Body=bytes(body))
    target = dr.database(migrated=False)
    refused = dr.command("restore", "--target-url", target, "--key", made["key"])
    assert refused.returncode == 1
    assert "checksum mismatch" in refused.stderr
    assert "nothing was restored" in refused.stderr
    assert table_count(target) == 0
    # Verified before any database is touched: --create does not even create the target.
    absent = dr.postgres.url(f"dr_absent_{uuid.uuid4().hex[:8]}")
    refused = dr.command("restore", "--target-url", absent, "--create", "--force")
    assert refused.returncode == 1
    assert "checksum mismatch" in refused.stderr
    assert absent.rsplit("/", 1)[1] not in databases(dr.postgres.url())


def test_restore_can_create_its_target(dr: DrEnv) -> None:
    source = dr.database()
    threads = write_dataset(source)
    assert dr.command("backup", database_url=source).returncode == 0
    target = dr.postgres.url(f"dr_new_{uuid.uuid4().hex[:8]}")
    missing = dr.command("restore", "--target-url", target)
    assert missing.returncode == 1
    assert "cannot connect to the target" in missing.stderr
    created = dr.command("restore", "--target-url", target, "--create")
    assert created.returncode == 0, created.stderr
    assert created.report()["created"] is True
    assert created.report()["rows"]["agent_threads"] == len(threads)
    assert table_digests(target) == table_digests(source)


def test_a_missing_backup_is_a_clear_error(dr: DrEnv) -> None:
    target = dr.database(migrated=False)
    none_yet = dr.command("restore", "--target-url", target)
    assert none_yet.returncode == 1
    assert f"no complete backup under s3://{dr.bucket}/postgres/" in none_yet.stderr
    missing = dr.command("restore", "--target-url", target, "--key", "postgres/nope.dump")
    assert missing.returncode == 1
    assert f"backup s3://{dr.bucket}/postgres/nope.dump not found" in missing.stderr


def test_a_non_empty_target_needs_force(dr: DrEnv) -> None:
    source = dr.database()
    write_dataset(source)
    assert dr.command("backup", database_url=source).returncode == 0
    target = dr.database()  # migrated: it has the service's (empty) tables
    refused = dr.command("restore", "--target-url", target)
    assert refused.returncode == 1
    assert "is not empty" in refused.stderr
    assert "--force" in refused.stderr
    assert table_digests(target)["agent_threads"][0] == 0
    forced = dr.command("restore", "--target-url", target, "--force")
    assert forced.returncode == 0, forced.stderr
    assert table_digests(target) == table_digests(source)


def test_large_databases_stream_in_bounded_parts(dr: DrEnv) -> None:
    source = dr.database(migrated=False)
    with psycopg.connect(source, autocommit=True) as conn:
        # ~26 MB of hex digits: compresses to roughly half, more than two 5 MiB parts.
        conn.execute(
            "CREATE TABLE blob AS SELECT string_agg(md5(random()::text), '') AS data "
            "FROM generate_series(1, 400000) GROUP BY generate_series % 4"
        )
    made = dr.command("backup", "--part-size-mib", "5", database_url=source).report()
    client = dr.s3.client()
    first = client.head_object(Bucket=dr.bucket, Key=made["key"], PartNumber=1)
    count = int(first["PartsCount"])
    sizes = [
        int(client.head_object(Bucket=dr.bucket, Key=made["key"], PartNumber=n)["ContentLength"])
        for n in range(1, count + 1)
    ]
    # The dump never sat anywhere whole: it went up in parts of exactly the configured size
    # (memory holds one), the last one the remainder.
    assert count >= 2
    assert sizes[:-1] == [PART] * (count - 1)
    assert 0 < sizes[-1] <= PART
    assert sum(sizes) == made["size"]
    target = dr.database(migrated=False)
    restored = dr.command("restore", "--target-url", target)
    assert restored.returncode == 0, restored.stderr
    assert table_digests(target) == table_digests(source)


def test_backups_use_the_configured_kms_key(dr: DrEnv) -> None:
    kms = boto3.client(
        "kms",
        endpoint_url=dr.s3.endpoint_url,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    key_arn = kms.create_key(Description="backups")["KeyMetadata"]["Arn"]
    source = dr.database()
    made = dr.command("backup", database_url=source, backup_kms_key_id=key_arn)
    assert made.returncode == 0, made.stderr
    assert made.report()["encryption"] == "aws:kms"
    client = dr.s3.client()
    for key in (made.report()["key"], made.report()["key"] + ".manifest.json"):
        head = client.head_object(Bucket=dr.bucket, Key=key)
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_arn)


def _nothing_uploaded(dr: DrEnv) -> bool:
    client = dr.s3.client()
    listed = client.list_objects_v2(Bucket=dr.bucket).get("KeyCount", 0)
    uploads = client.list_multipart_uploads(Bucket=dr.bucket).get("Uploads", [])
    return (listed, uploads) == (0, [])


def test_backup_failures_exit_non_zero_with_one_clear_line(dr: DrEnv) -> None:
    source = dr.database()
    no_bucket = dr.command("backup", "--attempts", "1", database_url=source, backup_bucket="")
    assert no_bucket.returncode == 1
    assert no_bucket.stderr.strip() == (
        "backup failed: no bucket: set BACKUP_BUCKET or pass --bucket"
    )
    # A missing bucket is not retried: no attempt can succeed.
    wrong_bucket = dr.command("backup", database_url=source, backup_bucket="does-not-exist")
    assert wrong_bucket.returncode == 1
    assert wrong_bucket.stderr.strip().splitlines() == [
        "backup failed: S3 refused to start the upload in s3://does-not-exist: NoSuchBucket"
    ]
    gone = source.rsplit("/", 1)[0] + "/no_such_database"
    failed = dr.command("backup", "--attempts", "2", database_url=gone)
    assert failed.returncode == 1
    assert "backup attempt 1 failed" in failed.stderr
    assert failed.stderr.strip().splitlines()[-1].startswith("backup failed: cannot read")
    assert 'database "no_such_database" does not exist' in failed.stderr
    invalid = dr.command("backup", database_url="postgresql://u:hunter2-xyz@127.0.0.1/db")
    assert invalid.returncode == 1
    assert invalid.stderr.startswith("backup failed: invalid settings: DATABASE_URL:")
    assert "hunter2-xyz" not in invalid.stderr
    assert _nothing_uploaded(dr)


def test_a_failing_pg_dump_aborts_the_upload(dr: DrEnv) -> None:
    source = dr.database()
    write_dataset(source)
    role = f"reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(source, autocommit=True) as conn:
        # Can read the schema version, not the threads: pg_dump itself fails, after the
        # upload has started.
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("GRANT SELECT ON agent_schema_version TO {}").format(sql.Identifier(role))
        )
    as_reader = source.replace("postgres@", f"{role}@", 1)
    failed = dr.command("backup", "--attempts", "2", database_url=as_reader)
    assert failed.returncode == 1
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("backup failed: pg_dump of 127.0.0.1:")
    assert "failed (exit 1)" in last
    assert "permission denied for table" in last
    assert "backup attempt 1 failed" in failed.stderr
    assert _nothing_uploaded(dr)


def test_pg_dump_is_taken_from_pg_bin_dir(dr: DrEnv, tmp_path: Path) -> None:
    source = dr.database()
    outcome = dr.command("backup", database_url=source, pg_bin_dir=str(tmp_path))
    assert outcome.returncode == 1
    assert outcome.stderr.strip().splitlines() == [
        f"backup failed: pg_dump not found in PG_BIN_DIR={tmp_path}"
    ]
