"""Data lifecycle: threads idle for more than CHECKPOINT_CLEANUP_DAYS are deleted (their
checkpoints through the checkpointer, then the service's records), and store items past their
TTL are swept; so are threads past their own TTL (threads.create/update `ttl`, minutes after
their last update). Each thread's row is claimed with a conditional DELETE first, so a thread that
is used again meanwhile is kept, and running it twice (or twice at once) is safe. A run that
died between a claim and the checkpointer leaves checkpoints without a thread record; the next
run finds those by the age of their newest checkpoint and finishes the job.
`agent-service retention` runs it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from langgraph.store.postgres.aio import AsyncPostgresStore

from agent_service.persistence.backends import open_persistence
from agent_service.persistence.postgres_tables import PostgresTables
from agent_service.settings import Settings

BATCH = 500

Finder = Callable[[int, int], Awaitable[list[str]]]


class RetentionRefused(Exception):
    """Retention cannot run against this configuration."""


async def _batches(find: Finder, days: int, skipped: set[str]) -> AsyncIterator[list[str]]:
    """Batches of thread ids `find` returns, leaving out those already `skipped` (the limit grows
    with them, so a batch is never all skipped ids while others wait)."""
    while True:
        batch = [t for t in await find(days, BATCH + len(skipped)) if t not in skipped]
        if not batch:
            return
        yield batch


async def apply_retention(settings: Settings, days: int, *, dry_run: bool) -> dict[str, Any]:
    if settings.database_url is None:
        raise RetentionRefused(
            "retention runs against PostgreSQL (DATABASE_URL); the embedded SQLite file "
            "belongs to its pod and goes with it"
        )
    deleted = expired = orphans = swept = 0
    async with open_persistence(settings) as persistence:
        tables = persistence.tables
        assert isinstance(tables, PostgresTables), "DATABASE_URL opens the PostgreSQL tables"
        skipped: set[str] = set()
        async for batch in _batches(tables.idle_thread_ids, days, skipped):
            for thread_id in batch:
                if dry_run:
                    skipped.add(thread_id)
                    deleted += 1
                    continue
                if not await tables.claim_idle_thread(thread_id, days):
                    skipped.add(thread_id)  # used again since the query: keep it
                    continue
                await persistence.checkpointer.adelete_thread(thread_id)
                deleted += 1
        kept: set[str] = set()
        async for batch in _batches(tables.expired_thread_ids, days, kept):
            for thread_id in batch:
                if dry_run:
                    kept.add(thread_id)
                    expired += 1
                    continue
                if not await tables.claim_expired_thread(thread_id):
                    kept.add(thread_id)  # renewed (run, updated) since the query: keep it
                    continue
                await persistence.checkpointer.adelete_thread(thread_id)
                expired += 1
        seen: set[str] = set()
        async for batch in _batches(tables.orphaned_checkpoint_threads, days, seen):
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
        "threads_expired": expired,
        "orphaned_threads_deleted": orphans,
        "store_items_expired": swept,
        "days": days,
        "dry_run": dry_run,
    }
