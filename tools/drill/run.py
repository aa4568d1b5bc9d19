"""The drill's core: write, back up, restore, serve, compare; endpoints come in a `Target`."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.drill.commands import restore_into, take_backup
from tools.drill.dataset import Snapshot, differences, snapshot, write_dataset
from tools.drill.instance import drop_database, service_on, with_database
from tools.drill.target import Target

RUNBOOK = "docs/runbooks/restore.md"


def run_drill(target: Target, work_dir: Path, *, keep: bool = False) -> dict[str, Any]:
    """The whole drill; the report's `drill` is "ok" or "mismatch"."""
    threads = asyncio.run(write_dataset(target.agent_url, target.api_keys))
    expected = asyncio.run(snapshot(target.agent_url, target.api_keys, threads))
    taken = take_backup(target.service_env)
    report = restore_and_verify(target, expected, threads, work_dir, keep=keep)
    report["backup_taken_by_drill"] = report["backup_key"] == taken.key
    return report


def restore_and_verify(
    target: Target,
    expected: Snapshot,
    threads: Mapping[str, list[str]],
    work_dir: Path,
    *,
    key: str | None = None,
    keep: bool = False,
) -> dict[str, Any]:
    """Restore `key` (default: the newest complete backup, as an operator would) into a new
    database, serve it, and compare what its API says with `expected`."""
    name = f"drill_{datetime.now(UTC):%Y%m%d%H%M%S}_{uuid.uuid4().hex[:6]}"
    restored_url = with_database(target.database_url, name)
    restore_started_at = datetime.now(UTC)
    restore_started = time.monotonic()
    try:
        restored = restore_into(target.service_env, restored_url, key)
        restore_seconds = time.monotonic() - restore_started
        with service_on(target.service_env, restored_url, work_dir / f"{name}.log") as url:
            rto = time.monotonic() - restore_started
            actual = asyncio.run(snapshot(url, target.api_keys, threads))
    finally:
        if not keep:
            drop_database(target.database_url, target.database_password, name)
    backup_time = datetime.fromisoformat(restored["created_at"])
    mismatches = differences(expected, actual)
    return {
        "drill": "ok" if not mismatches else "mismatch",
        "scenario": "dump",
        "runbook": RUNBOOK,
        "users": len(threads),
        "threads": len(expected.threads),
        "checkpoints": expected.checkpoints,
        "store_items": expected.store_items,
        "mismatches": mismatches,
        "backup_key": restored["key"],
        "backup_bytes": restored["size"],
        "restored_rows": restored["rows"],
        "rpo_seconds": round((restore_started_at - backup_time).total_seconds(), 3),
        "restore_seconds": round(restore_seconds, 3),
        "rto_seconds": round(rto, 3),
        "restored_database": name if keep else None,
    }
