"""Measure the AsyncPostgresSaver lock: concurrent aput + aget_tuple through one saver.

Not a test (no assertion, not collected): `uv run python -m tests.app.server.benchmarks.saver_lock`
starts a throw-away PostgreSQL on loopback and prints operations per second for the stock
saver, several stock savers sharing the pool, and the lock-free `PooledPostgresSaver`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from agent_service.persistence.pool import CONNECTION_KWARGS
from agent_service.persistence.saver import PooledPostgresSaver
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg_pool import AsyncConnectionPool

from tests.support.servers import PostgresServer

CONCURRENCY = 16
ROUNDS = 150
POOL_SIZE = 10


async def _worker(saver: AsyncPostgresSaver, rounds: int) -> None:
    thread_id = str(uuid.uuid4())
    config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    for _ in range(rounds):
        checkpoint = empty_checkpoint()
        config = await saver.aput(config, checkpoint, {"source": "loop", "step": 1}, {})
        await saver.aget_tuple(config)


async def _measure(
    label: str, savers: list[AsyncPostgresSaver], concurrency: int = CONCURRENCY
) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(_worker(savers[i % len(savers)], ROUNDS) for i in range(concurrency)))
    elapsed = time.perf_counter() - start
    ops = concurrency * ROUNDS * 2 / elapsed
    print(f"{label:<45} {ops:8.0f} ops/s  ({elapsed:.2f} s)")
    return ops


async def main(url: str) -> None:
    async with AsyncConnectionPool(
        url, kwargs=CONNECTION_KWARGS, min_size=POOL_SIZE, max_size=POOL_SIZE, open=False
    ) as pool:
        await pool.wait()
        await AsyncPostgresSaver(pool).setup()  # type: ignore[arg-type]
        print(f"{CONCURRENCY} coroutines x {ROUNDS} rounds of aput+aget_tuple, pool {POOL_SIZE}")
        await _measure("one coroutine, stock saver", [AsyncPostgresSaver(pool)], 1)  # type: ignore[arg-type]
        await _measure("stock AsyncPostgresSaver, one instance", [AsyncPostgresSaver(pool)])  # type: ignore[arg-type]
        await _measure(
            "stock AsyncPostgresSaver, 4 instances",
            [AsyncPostgresSaver(pool) for _ in range(4)],  # type: ignore[arg-type]
        )
        await _measure("PooledPostgresSaver (no lock), one instance", [PooledPostgresSaver(pool)])  # type: ignore[arg-type]


if __name__ == "__main__":
    server = PostgresServer().init().start()
    try:
        asyncio.run(main(server.url()))
    finally:
        server.destroy()
