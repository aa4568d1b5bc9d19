"""`agent-service retention`: threads idle for more than CHECKPOINT_CLEANUP_DAYS are deleted
(their checkpoints through the checkpointer, then the service's records), and store items past
their TTL are swept. Each thread's row is claimed with a conditional DELETE first, so a thread
that is used again meanwhile is kept, and running it twice (or twice at once) is safe."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import psycopg
from langgraph.store.postgres.aio import AsyncPostgresStore

from agent_service.dr.errors import DrError
from agent_service.persistence.backends import open_persistence
from agent_service.settings import Settings, load_settings

BATCH = 500
OLD_THREADS = """
    SELECT thread_id FROM agent_threads
    WHERE updated_at < now() - make_interval(days => %s) AND status <> 'busy'
    ORDER BY updated_at
    LIMIT %s
"""
CLAIM_THREAD = """
    DELETE FROM agent_threads
    WHERE thread_id = %s AND updated_at < now() - make_interval(days => %s) AND status <> 'busy'
    RETURNING thread_id
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--days", type=int, help="retention horizon in days (default: CHECKPOINT_CLEANUP_DAYS)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted, delete nothing"
    )


async def apply_retention(settings: Settings, days: int, *, dry_run: bool) -> dict[str, Any]:
    if settings.database_url is None:
        raise DrError(
            "retention runs against PostgreSQL (DATABASE_URL); the embedded SQLite file "
            "belongs to its pod and goes with it"
        )
    deleted = 0
    skipped: set[str] = set()
    async with open_persistence(settings) as persistence:
        pool = persistence.pool
        assert pool is not None, "PostgreSQL persistence has a pool"
        while True:
            async with pool.connection() as conn:
                rows = await (await conn.execute(OLD_THREADS, (days, BATCH))).fetchall()
            candidates = [row["thread_id"] for row in rows if row["thread_id"] not in skipped]
            if not candidates:
                break
            if dry_run:
                deleted += len(candidates)
                skipped.update(candidates)
                continue
            for thread_id in candidates:
                async with pool.connection() as conn:
                    claimed = await (await conn.execute(CLAIM_THREAD, (thread_id, days))).fetchone()
                if claimed is None:
                    skipped.add(thread_id)  # used again since the query: keep it
                    continue
                await persistence.checkpointer.adelete_thread(thread_id)
                deleted += 1
        store = persistence.store
        swept = 0
        if not dry_run and isinstance(store, AsyncPostgresStore):
            swept = await store.sweep_ttl()
    return {
        "threads_deleted": deleted,
        "store_items_expired": swept,
        "days": days,
        "dry_run": dry_run,
    }


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        days = args.days if args.days is not None else settings.checkpoint_cleanup_days
        if days < 1:
            raise DrError("--days must be at least 1")
        report = asyncio.run(apply_retention(settings, days, dry_run=args.dry_run))
    except (DrError, psycopg.Error) as exc:
        print(f"retention failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"event": "retention complete", **report}))
    return 0
