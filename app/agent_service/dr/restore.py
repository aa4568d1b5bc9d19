"""`agent-service restore`: a named backup (or the newest complete one) into a database.

The dump is read twice from S3, never stored: first to verify its size and SHA-256 against the
manifest, before any database is touched; then into `pg_restore --single-transaction`, hashed
again, so a restore either lands whole or not at all. A target that already holds tables is
refused unless --force (which replaces what the dump contains).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError
from psycopg.conninfo import make_conninfo

from agent_service.dr.errors import DrError
from agent_service.dr.postgres import (
    child_env,
    describe,
    password_of,
    pg_program,
    without_password,
)
from agent_service.dr.storage import (
    Manifest,
    latest_manifest,
    normalise_prefix,
    read_manifest,
    s3_client,
)
from agent_service.settings import load_settings

CHUNK = 1024 * 1024
USER_TABLES = """
    SELECT count(*) FROM information_schema.tables
    WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
"""
# What the report counts, when the dump holds the service's tables.
COUNTED_TABLES = ("agent_threads", "agent_runs", "checkpoints", "store")


@dataclass(frozen=True)
class Restored:
    key: str
    size: int
    sha256: str
    created_at: str
    schema_version: int | None
    target: str
    tables: int
    rows: dict[str, int]
    seconds: float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", help="the backup's S3 key (default: the newest complete one)")
    parser.add_argument("--bucket", help="S3 bucket (default: BACKUP_BUCKET)")
    parser.add_argument("--prefix", help="where to look for the newest (default: BACKUP_PREFIX)")
    parser.add_argument(
        "--target-url",
        help="libpq URL of the database to restore into (default: DATABASE_URL); "
        "its password comes from the URL, DATABASE_PASSWORD or the secret file",
    )
    parser.add_argument(
        "--force", action="store_true", help="restore into a database that already has tables"
    )


def _chunks(client: Any, bucket: str, key: str, version_id: str | None) -> Any:
    extra = {"VersionId": version_id} if version_id else {}
    try:
        answer = client.get_object(Bucket=bucket, Key=key, **extra)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise DrError(f"cannot read s3://{bucket}/{key}: {code}") from None
    except BotoCoreError as exc:
        raise DrError(f"cannot reach S3 to read s3://{bucket}/{key}: {exc}") from None
    return answer.get("VersionId"), answer["Body"].iter_chunks(CHUNK)


def verify(client: Any, bucket: str, manifest: Manifest) -> str | None:
    """Read the whole object and compare it with its manifest; returns the version read."""
    version_id, chunks = _chunks(client, bucket, manifest.key, None)
    sha, size = hashlib.sha256(), 0
    for chunk in chunks:
        sha.update(chunk)
        size += len(chunk)
    if size != manifest.size or sha.hexdigest() != manifest.sha256:
        raise DrError(
            f"checksum mismatch for s3://{bucket}/{manifest.key}: manifest says {manifest.size} "
            f"bytes sha256 {manifest.sha256[:12]}…, object has {size} bytes sha256 "
            f"{sha.hexdigest()[:12]}…; nothing was restored"
        )
    return str(version_id) if version_id else None


def user_tables(conninfo: str) -> int:
    with psycopg.connect(conninfo, connect_timeout=10) as conn:
        row = conn.execute(USER_TABLES).fetchone()
        return int(row[0]) if row else 0


def count_rows(conninfo: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    with psycopg.connect(conninfo, connect_timeout=10) as conn:
        for table in COUNTED_TABLES:
            present = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
            if present and present[0]:
                query = psycopg.sql.SQL("SELECT count(*) FROM {}").format(
                    psycopg.sql.Identifier(table)
                )
                row = conn.execute(query).fetchone()
                counts[table] = int(row[0]) if row else 0
    return counts


def restore(
    client: Any,
    bucket: str,
    manifest: Manifest,
    target_url: str,
    password: str | None,
    *,
    force: bool,
) -> Restored:
    started = time.monotonic()
    version_id = verify(client, bucket, manifest)
    conninfo = make_conninfo(target_url, password=password) if password else target_url
    try:
        existing = user_tables(conninfo)
    except psycopg.Error as exc:
        raise DrError(f"cannot connect to the target {describe(target_url)}: {exc}") from None
    if existing and not force:
        raise DrError(
            f"target {describe(target_url)} is not empty ({existing} tables); "
            "restore into a fresh database, or pass --force to replace what the dump contains"
        )
    command = [
        pg_program("pg_restore"),
        "--single-transaction",
        "--exit-on-error",
        "--no-owner",
        "--no-privileges",
        f"--dbname={without_password(target_url)}",
    ]
    if force:
        command[1:1] = ["--clean", "--if-exists"]
    _, chunks = _chunks(client, bucket, manifest.key, version_id)
    sha = hashlib.sha256()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(  # noqa: S603 - fixed program, no shell
            command, stdin=subprocess.PIPE, stderr=errors, env=child_env(password)
        )
        assert process.stdin is not None
        try:
            for chunk in chunks:
                sha.update(chunk)
                process.stdin.write(chunk)
            if sha.hexdigest() != manifest.sha256:
                # Killed before end of input: the single transaction never commits.
                process.kill()
                raise DrError(f"s3://{bucket}/{manifest.key} changed while restoring; rolled back")
            process.stdin.close()
        except BrokenPipeError:
            pass  # pg_restore stopped early; its exit status says why
        finally:
            returncode = process.wait()
        if returncode != 0:
            errors.seek(0)
            lines = errors.read().decode(errors="replace").strip().splitlines()
            reason = lines[-1] if lines else "no message"
            raise DrError(f"pg_restore into {describe(target_url)} failed, rolled back: {reason}")
    return Restored(
        key=manifest.key,
        size=manifest.size,
        sha256=manifest.sha256,
        created_at=manifest.created_at,
        schema_version=manifest.schema_version,
        target=describe(target_url),
        tables=user_tables(conninfo),
        rows=count_rows(conninfo),
        seconds=round(time.monotonic() - started, 3),
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        bucket = args.bucket or settings.backup_bucket
        if not bucket:
            raise DrError("no bucket: set BACKUP_BUCKET or pass --bucket")
        target = args.target_url or settings.database_url
        if not target:
            raise DrError("no target: pass --target-url or set DATABASE_URL")
        fallback = (
            settings.database_password.get_secret_value() if settings.database_password else None
        )
        client = s3_client(settings.aws_region, settings.s3_endpoint_url)
        prefix = normalise_prefix(
            args.prefix if args.prefix is not None else settings.backup_prefix
        )
        manifest = (
            read_manifest(client, bucket, args.key)
            if args.key
            else latest_manifest(client, bucket, prefix)
        )
        result = restore(
            client,
            bucket,
            manifest,
            without_password(target),
            password_of(target, fallback),
            force=args.force,
        )
    except DrError as exc:
        print(f"restore failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"event": "restore complete", **asdict(result)}))
    return 0
