"""Point-in-time recovery: a base backup and the archived WAL bring a fresh cluster back to just
before a destructive change, and a service on it proves through the API that everything
written before the target is there and nothing after it.

Follows docs/runbooks/pitr.md (local section). PostgreSQL semantics relied on
(postgresql.org/docs/15/continuous-archiving.html, runtime-config-wal.html#RUNTIME-CONFIG-WAL-
RECOVERY-TARGET): recovery.signal starts targeted recovery; with recovery_target_inclusive=off
recovery stops before the first commit at or after recovery_target_time; recovery_target_action
=promote opens the cluster read-write; pg_last_xact_replay_timestamp() "remains static at the
time of the last transaction applied during that recovery" once recovery has completed
(functions-admin.html#FUNCTIONS-RECOVERY-INFO-TABLE).
"""

from __future__ import annotations

import asyncio
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from agent_service.dr.errors import DrError
from psycopg.conninfo import make_conninfo

from tools.drill.dataset import Snapshot, differences, snapshot, write_dataset
from tools.drill.instance import service_on
from tools.drill.target import Target
from tools.kit.programs import require_program
from tools.kit.servers import PostgresServer
from tools.kit.walarchive import BASE_PREFIX, WalArchive

ARCHIVE_WAIT_SECONDS = 90.0
RECOVERY_TIMEOUT_SECONDS = 300.0
BASE_BACKUP_TIMEOUT = 1800
RUNBOOK = "docs/runbooks/pitr.md"


@dataclass(frozen=True)
class Pitr:
    """What point-in-time recovery needs of the environment: a superuser connection to its
    cluster (base backups, WAL switches) and where that cluster archives its WAL."""

    admin_url: str
    archive: WalArchive

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.archive.endpoint_url,
            region_name=self.archive.region,
            aws_access_key_id=self.archive.access_key_id,
            aws_secret_access_key=self.archive.secret_access_key,
        )


def take_base_backup(pitr: Pitr, work_dir: Path) -> str:
    """pg_basebackup (tar, gzip, the WAL it needs included) streamed into the archive bucket
    under base/; returns its key."""
    key = f"{BASE_PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}/base.tar.gz"
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="base-") as scratch:
        command = [
            require_program("pg_basebackup"),
            "--dbname",
            pitr.admin_url,
            "--pgdata",
            scratch + "/backup",
            "--format=tar",
            "--gzip",
            "--wal-method=fetch",
            "--checkpoint=fast",
            "--label=drill",
            "--no-sync",
        ]
        result = subprocess.run(  # noqa: S603 - PostgreSQL's own program
            command, capture_output=True, text=True, timeout=BASE_BACKUP_TIMEOUT, check=False
        )
        if result.returncode != 0:
            raise DrError(f"pg_basebackup exited {result.returncode}: {result.stderr.strip()}")
        pitr.client().upload_file(f"{scratch}/backup/base.tar.gz", pitr.archive.bucket, key)
    return key


def server_now(admin_url: str) -> datetime:
    with psycopg.connect(admin_url, connect_timeout=10) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    now: datetime = row[0]
    return now


def switch_and_wait_archived(admin_url: str, timeout: float = ARCHIVE_WAIT_SECONDS) -> float:
    """Close the current WAL segment and wait until the archiver has shipped it; returns the
    seconds that took (the archive's lag behind the cluster)."""
    started = time.monotonic()
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        assert row is not None
        segment: str = row[0]
        while True:
            status = conn.execute(
                "SELECT last_archived_wal, last_failed_wal, failed_count FROM pg_stat_archiver"
            ).fetchone()
            assert status is not None
            archived, failed, failures = status
            if archived is not None and archived >= segment:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise DrError(
                    f"WAL segment {segment} not archived after {timeout:.0f} s (last archived "
                    f"{archived}, last failed {failed}, {failures} failures): "
                    "see the cluster's log for archive_command's error"
                )
            time.sleep(0.1)


def bad_migration(database_url: str, password: str | None, threads: Mapping[str, list[str]]) -> int:
    """The disaster: a "migration" that deletes the drill principals' threads, checkpoints
    and memories (only theirs: the environment's other data is left alone). Returns rows."""
    thread_ids = [thread_id for ids in threads.values() for thread_id in ids]
    users = sorted(threads)
    conninfo = make_conninfo(database_url, password=password) if password else database_url
    deleted = 0
    with psycopg.connect(conninfo, connect_timeout=10) as conn:
        for table in ("checkpoint_writes", "checkpoint_blobs", "checkpoints", "agent_threads"):
            cursor = conn.execute(
                f"DELETE FROM {table} WHERE thread_id = ANY(%s)",  # noqa: S608 - fixed names
                (thread_ids,),
            )
            deleted += cursor.rowcount
        for user in users:
            cursor = conn.execute("DELETE FROM store WHERE strpos(prefix, %s) > 0", (user,))
            deleted += cursor.rowcount
    return deleted


def with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def restore_cluster(pitr: Pitr, base_key: str, target_time: datetime) -> PostgresServer:
    """A fresh cluster from `base_key` and the archived WAL, recovered to just before
    `target_time` and promoted; its archiving is off (it must not write into the source's
    archive)."""
    server = PostgresServer()
    archive_path = server.root / "base.tar.gz"
    pitr.client().download_file(pitr.archive.bucket, base_key, str(archive_path))
    server.data_dir.mkdir()
    with tarfile.open(archive_path) as tar:
        tar.extractall(server.data_dir, filter="data")
    archive_path.unlink()
    (server.data_dir / "recovery.signal").touch()
    netrc = pitr.archive.write_netrc(server.root / "s3.netrc", server.owner)
    server.settings.update(
        {
            "restore_command": pitr.archive.restore_command(netrc),
            "recovery_target_time": target_time.isoformat(sep=" "),
            "recovery_target_inclusive": "off",
            "recovery_target_action": "promote",
            "archive_mode": "off",
        }
    )
    server.adopt()
    try:
        server.start(timeout=RECOVERY_TIMEOUT_SECONDS)
        _wait_promoted(server)
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        log = server.log_tail()
        server.destroy()
        raise DrError(f"point-in-time recovery failed ({exc}): {log}") from None
    return server


def _wait_promoted(server: PostgresServer) -> None:
    deadline = time.monotonic() + RECOVERY_TIMEOUT_SECONDS
    with psycopg.connect(server.socket_url(), autocommit=True, connect_timeout=10) as conn:
        while True:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if row is not None and not row[0]:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("still in recovery")
            time.sleep(0.05)


def recovered_until(server: PostgresServer) -> datetime:
    with psycopg.connect(server.socket_url(), connect_timeout=10) as conn:
        row = conn.execute("SELECT pg_last_xact_replay_timestamp()").fetchone()
    if row is None or row[0] is None:
        raise DrError("the restored cluster replayed no transaction from the archive")
    replayed: datetime = row[0]
    return replayed


async def present_threads(
    agent_url: str, api_keys: Mapping[str, str], threads: Mapping[str, list[str]]
) -> list[str]:
    """Which of `threads` the service still knows (GET /threads/{id} not 404)."""
    found: list[str] = []
    async with httpx.AsyncClient(base_url=agent_url, timeout=60) as http:
        for user, thread_ids in threads.items():
            for thread_id in thread_ids:
                answer = await http.get(
                    f"/threads/{thread_id}", headers={"X-API-Key": api_keys[user]}
                )
                if answer.status_code != 404:
                    answer.raise_for_status()
                    found.append(thread_id)
    return found


def run_pitr(target: Target, pitr: Pitr, work_dir: Path, *, keep: bool = False) -> dict[str, Any]:
    """Base backup; data set A; target time; data set B; bad migration; restore to the
    target into a fresh cluster; A must be there exactly, B and the damage must not."""
    base_key = take_base_backup(pitr, work_dir)
    before = asyncio.run(write_dataset(target.agent_url, target.api_keys))
    expected: Snapshot = asyncio.run(snapshot(target.agent_url, target.api_keys, before))
    target_time = server_now(pitr.admin_url)
    after = asyncio.run(write_dataset(target.agent_url, target.api_keys))
    damaged = bad_migration(target.database_url, target.database_password, _merge(before, after))
    disaster_at = server_now(pitr.admin_url)
    archive_lag = switch_and_wait_archived(pitr.admin_url)

    restore_started = time.monotonic()
    server = restore_cluster(pitr, base_key, target_time)
    try:
        replayed_to = recovered_until(server)
        restore_seconds = time.monotonic() - restore_started
        restored_url = with_port(target.database_url, server.port)
        log = work_dir / f"pitr_{datetime.now(UTC):%Y%m%d%H%M%S}.log"
        with service_on(target.service_env, restored_url, log) as url:
            rto = time.monotonic() - restore_started
            actual = asyncio.run(snapshot(url, target.api_keys, before))
            leaked = asyncio.run(present_threads(url, target.api_keys, after))
    finally:
        if not keep:
            server.destroy()
    mismatches = differences(expected, actual) + [
        f"thread {thread_id}: written after the target, yet restored" for thread_id in leaked
    ]
    return {
        "drill": "ok" if not mismatches else "mismatch",
        "scenario": "pitr",
        "runbook": RUNBOOK,
        "users": len(before),
        "threads": len(expected.threads),
        "checkpoints": expected.checkpoints,
        "store_items": expected.store_items,
        "threads_after_target": sum(len(ids) for ids in after.values()),
        "threads_after_target_restored": len(leaked),
        "bad_migration_rows": damaged,
        "mismatches": mismatches,
        "base_backup_key": base_key,
        "target_time": target_time.isoformat(),
        "recovered_until": replayed_to.isoformat(),
        "disaster_at": disaster_at.isoformat(),
        "archive_lag_seconds": round(archive_lag, 3),
        "rpo_seconds": round(max(0.0, (target_time - replayed_to).total_seconds()), 3),
        "restore_seconds": round(restore_seconds, 3),
        "rto_seconds": round(rto, 3),
        "restored_cluster": str(server.root) if keep else None,
    }


def _merge(*parts: Mapping[str, list[str]]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for part in parts:
        for user, ids in part.items():
            merged.setdefault(user, []).extend(ids)
    return merged
