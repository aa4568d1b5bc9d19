"""Backup to S3 and restore from it, against real PostgreSQL and moto's S3 server."""

from __future__ import annotations

import math

import psycopg
import pytest

from tests.dr.conftest import DrEnv
from tests.dr.dataset import table_count, table_digests, write_dataset

pytestmark = pytest.mark.integration


def test_round_trip_restores_every_row(dr: DrEnv) -> None:
    source = dr.database()
    threads = write_dataset(source)
    backup = dr.command("backup", database_url=source)
    assert backup.returncode == 0, backup.stderr
    made = backup.report()
    assert made["encryption"] == "aws:kms"
    assert made["schema_version"] >= 1
    assert len(made["sha256"]) == 64

    target = dr.database(migrated=False)
    restored = dr.command("restore", "--target-url", target)
    assert restored.returncode == 0, restored.stderr
    report = restored.report()
    assert report["key"] == made["key"]
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
    head = dr.s3.client().head_object(Bucket=dr.bucket, Key=made["key"])
    parts = int(str(head["ETag"]).strip('"').rsplit("-", 1)[1])
    assert parts >= 2
    assert parts == math.ceil(made["size"] / (5 * 1024 * 1024))


def test_backup_failures_exit_non_zero_with_one_clear_line(dr: DrEnv) -> None:
    source = dr.database()
    no_bucket = dr.command("backup", "--attempts", "1", database_url=source, backup_bucket="")
    assert no_bucket.returncode == 1
    assert "no bucket: set BACKUP_BUCKET" in no_bucket.stderr
    wrong_bucket = dr.command(
        "backup", "--attempts", "1", database_url=source, backup_bucket="does-not-exist"
    )
    assert wrong_bucket.returncode == 1
    assert "NoSuchBucket" in wrong_bucket.stderr
    gone = source.rsplit("/", 1)[0] + "/no_such_database"
    failed = dr.command("backup", "--attempts", "2", database_url=gone)
    assert failed.returncode == 1
    assert "backup attempt 1 failed" in failed.stderr
    assert failed.stderr.strip().splitlines()[-1].startswith("backup failed:")
    listed = dr.s3.client().list_objects_v2(Bucket=dr.bucket).get("KeyCount", 0)
    uploads = dr.s3.client().list_multipart_uploads(Bucket=dr.bucket).get("Uploads", [])
    assert (listed, uploads) == (0, [])
