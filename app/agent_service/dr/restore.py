"""Restore: a named backup (or the newest complete one) into a database (`agent-service restore`).

The dump is read twice from S3, never stored: first to verify its size and SHA-256 against the
manifest, before any database is touched; then into `pg_restore --single-transaction`, hashed
again with its last bytes held back until the hash matches, so a restore either lands whole or
not at all. A target that already holds tables is refused unless --force (which replaces what
the dump contains); --create makes a missing target database.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError
from psycopg import sql
from psycopg.conninfo import make_conninfo

from agent_service.dr.errors import DrError
from agent_service.dr.postgres import (
    StderrTail,
    child_env,
    describe,
    ensure_database,
    pg_program,
    without_password,
)
from agent_service.dr.storage import (
    Manifest,
)

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
    created: bool
    tables: int
    rows: dict[str, int]
    seconds: float


def _chunks(
    client: Any, bucket: str, key: str, version_id: str | None
) -> tuple[str | None, Iterator[bytes]]:
    extra = {"VersionId": version_id} if version_id else {}
    try:
        answer = client.get_object(Bucket=bucket, Key=key, **extra)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise DrError(f"cannot read s3://{bucket}/{key}: {code}") from None
    except BotoCoreError as exc:
        raise DrError(f"cannot reach S3 to read s3://{bucket}/{key}: {exc}") from None
    version = answer.get("VersionId")
    return (str(version) if version else None), answer["Body"].iter_chunks(CHUNK)


def verify(client: Any, bucket: str, manifest: Manifest) -> str | None:
    """Read the whole object and compare it with its manifest; returns the version read."""
    version_id, chunks = _chunks(client, bucket, manifest.key, None)
    sha, size = hashlib.sha256(), 0
    try:
        for chunk in chunks:
            sha.update(chunk)
            size += len(chunk)
    except BotoCoreError as exc:
        raise DrError(f"lost S3 while reading s3://{bucket}/{manifest.key}: {exc}") from None
    if size != manifest.size or sha.hexdigest() != manifest.sha256:
        raise DrError(
            f"checksum mismatch for s3://{bucket}/{manifest.key}: manifest says {manifest.size} "
            f"bytes sha256 {manifest.sha256[:12]}…, object has {size} bytes sha256 "
            f"{sha.hexdigest()[:12]}…; nothing was restored"
        )
    return version_id


class _Changed(Exception):
    """The second read of the object did not hash to the manifest's SHA-256."""


def _feed(stdin: IO[bytes], chunks: Iterable[bytes], sha256: str) -> None:
    """Write the dump into pg_restore, holding its last chunk back until the whole object has
    hashed to `sha256`: a dump that differs from what `verify` read never reaches the end of
    its archive, so the single transaction never commits."""
    sha = hashlib.sha256()
    held: bytes | None = None
    for chunk in chunks:
        if held is not None:
            stdin.write(held)
        sha.update(chunk)
        held = chunk
    if sha.hexdigest() != sha256:
        raise _Changed
    if held is not None:
        stdin.write(held)
    stdin.close()


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
                query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                row = conn.execute(query).fetchone()
                counts[table] = int(row[0]) if row else 0
    return counts


def _pg_restore(
    client: Any,
    bucket: str,
    manifest: Manifest,
    version_id: str | None,
    target_url: str,
    password: str | None,
    *,
    force: bool,
    pg_bin_dir: Path | None,
) -> None:
    command = [
        pg_program("pg_restore", pg_bin_dir),
        *(["--clean", "--if-exists"] if force else []),
        "--single-transaction",
        "--exit-on-error",
        "--no-owner",
        "--no-privileges",
        f"--dbname={without_password(target_url)}",
    ]
    _, chunks = _chunks(client, bucket, manifest.key, version_id)
    process = subprocess.Popen(  # noqa: S603 - fixed program, no shell
        command, stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(password)
    )
    assert process.stdin is not None
    assert process.stderr is not None
    errors = StderrTail(process.stderr)
    problem: str | None = None
    try:
        _feed(process.stdin, chunks, manifest.sha256)
    except _Changed:
        problem = f"s3://{bucket}/{manifest.key} changed while restoring"
    except BotoCoreError as exc:
        problem = f"lost S3 while restoring s3://{bucket}/{manifest.key}: {exc}"
    except BrokenPipeError:
        pass  # pg_restore stopped early; its exit status says why
    if problem is not None:
        # Killed before its last bytes: pg_restore cannot have reached its COMMIT.
        process.kill()
        process.wait()
        raise DrError(f"{problem}; nothing was restored")
    returncode = process.wait()
    if returncode != 0:
        raise DrError(
            f"pg_restore into {describe(target_url)} failed, rolled back: {errors.reason()}"
        )


def restore(
    client: Any,
    bucket: str,
    manifest: Manifest,
    target_url: str,
    password: str | None,
    *,
    force: bool,
    create: bool = False,
    pg_bin_dir: Path | None = None,
) -> Restored:
    """Verify, then restore `manifest`'s dump into `target_url` (a URL without password)."""
    started = time.monotonic()
    version_id = verify(client, bucket, manifest)
    created = ensure_database(target_url, password) if create else False
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
    _pg_restore(
        client,
        bucket,
        manifest,
        version_id,
        target_url,
        password,
        force=force,
        pg_bin_dir=pg_bin_dir,
    )
    return Restored(
        key=manifest.key,
        size=manifest.size,
        sha256=manifest.sha256,
        created_at=manifest.created_at,
        schema_version=manifest.schema_version,
        target=describe(target_url),
        created=created,
        tables=user_tables(conninfo),
        rows=count_rows(conninfo),
        seconds=round(time.monotonic() - started, 3),
    )
