"""Checkpoint write and read latency through the service's saver on PostgreSQL, with the
upstream AsyncPostgresSaver on the same pool as the peer row; sequential (latency) and with 32
concurrent writers (where the upstream saver's per-instance lock serialises every call)."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

from agent_service.persistence.saver import PooledPostgresSaver
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool


def _quantiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50_ms": cuts[49] * 1000, "p95_ms": cuts[94] * 1000}


async def _one_saver(saver: AsyncPostgresSaver, count: int, concurrency: int) -> dict[str, Any]:
    threads = [f"bench-{uuid.uuid4().hex[:8]}-{i}" for i in range(concurrency)]
    writes: list[float] = []
    reads: list[float] = []

    async def writer(thread_id: str) -> None:
        for _ in range(count):
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"] = {"messages": ["x" * 200] * 10}
            config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
            started = time.perf_counter()
            await saver.aput(config, checkpoint, {"source": "loop", "step": 1}, {"messages": 1})
            writes.append(time.perf_counter() - started)
            started = time.perf_counter()
            await saver.aget_tuple(config)
            reads.append(time.perf_counter() - started)

    wall = time.perf_counter()
    await asyncio.gather(*(writer(t) for t in threads))
    elapsed = time.perf_counter() - wall
    return {
        "write": _quantiles(writes),
        "read": _quantiles(reads),
        "operations_per_s": 2 * len(writes) / elapsed,
    }


async def measure(database_url: str, count: int) -> dict[str, Any]:
    kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    async with AsyncConnectionPool(database_url, min_size=8, max_size=32, kwargs=kwargs) as pool:
        await pool.wait()
        upstream = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
        await upstream.setup()
        ours = PooledPostgresSaver(pool)  # type: ignore[arg-type]
        results: dict[str, Any] = {}
        for concurrency in (1, 32):
            results[f"concurrency_{concurrency}"] = {
                "service_saver": await _one_saver(ours, count, concurrency),
                "upstream_saver": await _one_saver(upstream, count, concurrency),
            }
        return results
