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
