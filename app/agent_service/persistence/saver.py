"""A PostgreSQL checkpointer without the per-saver lock when it runs on a pool.

`AsyncPostgresSaver` holds one `asyncio.Lock` around every call, even when its connection is a
pool; every checkpoint read and write of the whole process then waits in one line. The lock
exists to protect a single shared connection. On a pool, each `_cursor()` checks out a
connection of its own that no other coroutine uses until it is returned, so there is nothing
to protect (the upstream `AsyncPostgresStore` already drops the lock for pools the same way).
With a single connection the upstream lock stays.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from psycopg_pool import AsyncConnectionPool

from agent_service.persistence.pool import Pool


class _NoLock(asyncio.Lock):
    """Stands in for the saver's lock: entering never waits."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class PooledPostgresSaver(AsyncPostgresSaver):
    """`AsyncPostgresSaver` whose calls run concurrently, one pooled connection each."""

    def __init__(self, pool: Pool, *, serde: SerializerProtocol | None = None) -> None:
        if not isinstance(pool, AsyncConnectionPool):
            raise TypeError("PooledPostgresSaver needs an AsyncConnectionPool")
        super().__init__(pool, serde=serde)
        self.lock = _NoLock()
