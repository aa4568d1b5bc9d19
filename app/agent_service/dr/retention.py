"""`agent-service retention`: threads idle for more than CHECKPOINT_CLEANUP_DAYS are deleted
(their checkpoints through the checkpointer, then the service's records), and store items past
their TTL are swept. Each thread's row is claimed with a conditional DELETE first, so a thread
that is used again meanwhile is kept, and running it twice (or twice at once) is safe. A run
that died between a claim and the checkpointer leaves checkpoints without a thread record;
the next run finds those by the age of their newest checkpoint and finishes the job."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from langgraph.store.postgres.aio import AsyncPostgresStore
from psycopg_pool import PoolTimeout

from agent_service.dr.config import dr_settings
from agent_service.dr.errors import DrError
from agent_service.persistence.backends import open_persistence
from agent_service.persistence.pool import Pool
from agent_service.settings import Settings

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

# Every thread gets its agent_threads row before its first checkpoint, so checkpoints without
# one are what an interrupted run (or a delete) left behind; the age test spares anything new.
ORPHANED_THREADS = """
    SELECT c.thread_id FROM checkpoints AS c
    WHERE NOT EXISTS (SELECT 1 FROM agent_threads AS t WHERE t.thread_id = c.thread_id)
    GROUP BY c.thread_id
    HAVING max((c.checkpoint ->> 'ts')::timestamptz) < now() - make_interval(days => %s)
    LIMIT %s
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--days", type=int, help="retention horizon in days (default: CHECKPOINT_CLEANUP_DAYS)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted, delete nothing"
    )


async def _batches(
    pool: Pool, query: str, days: int, skipped: set[str]
) -> AsyncIterator[list[str]]:
    """Batches of thread ids `query` finds, leaving out those already `skipped` (the limit grows
    with them, so a batch is never all skipped ids while others wait)."""
    while True:
        async with pool.connection() as conn:
            rows = await (await conn.execute(query, (days, BATCH + len(skipped)))).fetchall()
        batch = [row["thread_id"] for row in rows if row["thread_id"] not in skipped]
        if not batch:
            return
        yield batch


async def apply_retention(settings: Settings, days: int, *, dry_run: bool) -> dict[str, Any]:
    if settings.database_url is None:
        raise DrError(
            "retention runs against PostgreSQL (DATABASE_URL); the embedded SQLite file "
            "belongs to its pod and goes with it"
        )
    deleted = orphans = swept = 0
    async with open_persistence(settings) as persistence:
        pool = persistence.pool
        assert pool is not None, "PostgreSQL persistence has a pool"
        skipped: set[str] = set()
        async for batch in _batches(pool, OLD_THREADS, days, skipped):
            for thread_id in batch:
                if dry_run:
                    skipped.add(thread_id)
                    deleted += 1
                    continue
                async with pool.connection() as conn:
                    claimed = await (await conn.execute(CLAIM_THREAD, (thread_id, days))).fetchone()
                if claimed is None:
                    skipped.add(thread_id)  # used again since the query: keep it
                    continue
                await persistence.checkpointer.adelete_thread(thread_id)
                deleted += 1
        seen: set[str] = set()
        async for batch in _batches(pool, ORPHANED_THREADS, days, seen):
            for thread_id in batch:
                seen.add(thread_id)
                if not dry_run:
                    await persistence.checkpointer.adelete_thread(thread_id)
                orphans += 1
        store = persistence.store
        if not dry_run and isinstance(store, AsyncPostgresStore):
            swept = await store.sweep_ttl()
    return {
        "threads_deleted": deleted,
        "orphaned_threads_deleted": orphans,
        "store_items_expired": swept,
        "days": days,
        "dry_run": dry_run,
    }


def run(args: argparse.Namespace) -> int:
    try:
        settings = dr_settings()
        days = args.days if args.days is not None else settings.checkpoint_cleanup_days
        if days < 1:
            raise DrError("--days must be at least 1")
        report = asyncio.run(apply_retention(settings, days, dry_run=args.dry_run))
    except (DrError, psycopg.Error, PoolTimeout) as exc:
        print(f"retention failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"event": "retention complete", **report}))
    return 0
