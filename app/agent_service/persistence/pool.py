"""The one PostgreSQL connection pool per process, shared by the checkpointer, store and tables.

Connections heal by themselves after a failover: `check` tests each connection as it leaves
the pool, `max_lifetime`/`max_idle` recycle them before a cloud idle timeout cuts them, TCP
keepalives notice a dead peer, and a short pool `timeout` turns "database down" into a fast
error the API answers with 503 instead of a hung request.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from agent_service.metrics import (
    DB_POOL_AVAILABLE,
    DB_POOL_MAX,
    DB_POOL_REQUESTS_WAITING,
    DB_POOL_SIZE,
)
from agent_service.settings import Settings

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]

# What the LangGraph savers expect of every connection: autocommit and dict rows. No
# server-side prepared statements at all (`None`; psycopg's `0` means "prepare every query"):
# PgBouncer in transaction mode and a failover to a fresh server both break them.
CONNECTION_KWARGS: dict[str, Any] = {
    "autocommit": True,
    "prepare_threshold": None,
    "row_factory": dict_row,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def build_pool(settings: Settings, *, name: str = "agent-service") -> Pool:
    """Create (not open) the pool; the lifespan opens it without waiting for the database,
    so the process starts and reports not-ready while PostgreSQL is away."""
    connect_timeout = max(1, int(settings.database_pool_timeout_seconds))
    return AsyncConnectionPool(
        settings.database_conninfo(),
        kwargs={**CONNECTION_KWARGS, "connect_timeout": connect_timeout},
        min_size=settings.database_pool_min,
        max_size=settings.database_pool_max,
        timeout=settings.database_pool_timeout_seconds,
        max_lifetime=settings.database_pool_max_lifetime_seconds,
        max_idle=settings.database_pool_max_idle_seconds,
        check=AsyncConnectionPool.check_connection,
        open=False,
        name=name,
    )


def publish_pool_stats(pool: Pool) -> None:
    """Copy the pool's state into the pool gauges (psycopg_pool's `get_stats()`, which also
    holds counters we leave alone: https://www.psycopg.org/psycopg3/docs/advanced/pool.html#pool-stats).
    Called on every scrape and every few seconds, so that with several workers each worker's
    gauge file is fresh whichever worker answers the scrape."""
    stats = pool.get_stats()
    DB_POOL_SIZE.set(stats.get("pool_size", 0))
    DB_POOL_AVAILABLE.set(stats.get("pool_available", 0))
    DB_POOL_MAX.set(stats.get("pool_max", pool.max_size))
    DB_POOL_REQUESTS_WAITING.set(stats.get("requests_waiting", 0))
