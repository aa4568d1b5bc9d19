"""Open the checkpointer, the store and the service tables for one process.

PostgreSQL when DATABASE_URL is set: one pool shared by a lock-free checkpointer, the store and
the service tables. The embedded SQLite file otherwise: three connections to one WAL-mode file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, cast

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore, TTLConfig

from agent_service.embeddings import store_index
from agent_service.persistence.cron_tables import (
    CronTables,
    PostgresCronTables,
    SqliteCronTables,
)
from agent_service.persistence.guard import GuardedPostgresSaver, GuardedSqliteSaver
from agent_service.persistence.pool import Pool, build_pool
from agent_service.persistence.postgres_tables import PostgresTables
from agent_service.persistence.records import ServiceTables
from agent_service.persistence.run_queue import RunQueueTables
from agent_service.persistence.run_queue_postgres import PostgresRunQueue
from agent_service.persistence.run_queue_sqlite import SqliteRunQueue
from agent_service.persistence.sqlite_tables import SqliteTables
from agent_service.persistence.store_guard import GuardedPostgresStore, GuardedSqliteStore
from agent_service.settings import Settings

Backend = Literal["postgres", "sqlite"]
SQLITE_BUSY_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Persistence:
    backend: Backend
    checkpointer: BaseCheckpointSaver[str]
    store: BaseStore
    tables: ServiceTables
    queue: RunQueueTables
    crons: CronTables
    pool: Pool | None = None


# Minutes between two deletions of expired items by each process's sweeper (LangGraph's TTL
# sweeper, started by the server; `retention` sweeps too). An expired item is already hidden
# from reads on PostgreSQL before its sweep (`omit_expired`).
STORE_TTL_SWEEP_MINUTES = 5


def store_ttl(settings: Settings) -> TTLConfig:
    """Items put with a `ttl` (minutes) expire that long after their last read or write; with
    `STORE_ITEM_TTL_DAYS`, so does every item put without one. LangGraph's TTL configuration:
    https://langchain-ai.github.io/langgraph/reference/store/#langgraph.store.base.TTLConfig"""
    days = settings.store_item_ttl_days
    return TTLConfig(
        default_ttl=None if days is None else days * 24 * 60,
        refresh_on_read=True,
        omit_expired=True,
        sweep_interval_minutes=STORE_TTL_SWEEP_MINUTES,
    )


@asynccontextmanager
async def open_persistence(settings: Settings) -> AsyncIterator[Persistence]:
    if settings.database_url is not None:
        async with _open_postgres(settings) as persistence:
            yield persistence
    else:
        async with _open_sqlite(settings) as persistence:
            yield persistence


@asynccontextmanager
async def _open_postgres(settings: Settings) -> AsyncIterator[Persistence]:
    pool = build_pool(settings)
    # Not waiting: the process starts (and answers /ready 503) while the database is away.
    await pool.open(wait=False)
    tables = PostgresTables(pool)
    # Checks the thread's owner inside each write transaction (persistence.guard).
    checkpointer = GuardedPostgresSaver(pool)
    store = GuardedPostgresStore(
        pool, ttl=store_ttl(settings), index=cast(Any, store_index(settings))
    )
    store.owner_of = tables.thread_owner
    try:
        yield Persistence(
            backend="postgres",
            checkpointer=checkpointer,
            store=store,
            tables=tables,
            queue=PostgresRunQueue(pool),
            crons=PostgresCronTables(pool),
            pool=pool,
        )
    finally:
        await pool.close()


async def _sqlite_connect(path: str, *, autocommit: bool) -> aiosqlite.Connection:
    if autocommit:
        conn = await aiosqlite.connect(path, isolation_level=None)
    else:
        # Writes take the write lock when their transaction begins (BEGIN IMMEDIATE), so a
        # concurrent writer waits on busy_timeout; a deferred transaction that reads first and
        # then writes fails at once with "database is locked" when another connection writes.
        conn = await aiosqlite.connect(path, isolation_level="IMMEDIATE")
    await conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    await conn.execute("PRAGMA journal_mode = WAL")
    await conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _sqlite_loads_extensions() -> bool:
    return hasattr(sqlite3.Connection, "enable_load_extension")


@asynccontextmanager
async def _open_sqlite(settings: Settings) -> AsyncIterator[Persistence]:
    settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    path = str(settings.sqlite_path)
    async with AsyncExitStack() as stack:
        saver_conn = await _sqlite_connect(path, autocommit=False)
        stack.push_async_callback(saver_conn.close)
        store_conn = await _sqlite_connect(path, autocommit=True)
        stack.push_async_callback(store_conn.close)
        tables_conn = await _sqlite_connect(path, autocommit=True)
        stack.push_async_callback(tables_conn.close)
        checkpointer = GuardedSqliteSaver(saver_conn)
        # The SQLite store searches by meaning through the sqlite-vec extension, which a Python
        # built without loadable SQLite extensions cannot load: then search has no `query`.
        index = store_index(settings) if _sqlite_loads_extensions() else None
        store = GuardedSqliteStore(store_conn, index=cast(Any, index), ttl=store_ttl(settings))
        # One lock for the three: in WAL mode a deferred "BEGIN ... read ... write" (the store's)
        # fails at once with "database is locked" when another connection commits in between,
        # whatever busy_timeout says. SQLite has one writer anyway.
        store.lock = checkpointer.lock
        tables = SqliteTables(tables_conn, checkpointer.lock)
        checkpointer.owner_of = tables.thread_owner
        store.owner_of = tables.thread_owner
        yield Persistence(
            backend="sqlite",
            checkpointer=checkpointer,
            store=store,
            tables=tables,
            queue=SqliteRunQueue(tables_conn, checkpointer.lock),
            crons=SqliteCronTables(tables_conn, checkpointer.lock),
        )
