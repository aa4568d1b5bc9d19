"""The lock-free PostgreSQL checkpointer: calls overlap, and results stay correct."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from agent_service.persistence.pool import CONNECTION_KWARGS, Pool
from agent_service.persistence.saver import PooledPostgresSaver
from langgraph.checkpoint.base import create_checkpoint, empty_checkpoint
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg_pool import AsyncConnectionPool

from tests.app.server.conftest import fresh_database
from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.service import Service
from tools.kit.servers import PostgresServer

pytestmark = pytest.mark.integration


@asynccontextmanager
async def _pool(url: str) -> AsyncIterator[Pool]:
    async with AsyncConnectionPool(
        url, kwargs=CONNECTION_KWARGS, min_size=4, max_size=8, open=False
    ) as pool:
        await pool.wait()
        yield pool  # type: ignore[misc]


def test_calls_overlap_where_the_stock_saver_serialises(postgres_server: PostgresServer) -> None:
    url = fresh_database(postgres_server)

    async def scenario() -> None:
        async with _pool(url) as pool:
            ours = PooledPostgresSaver(pool)
            async with ours._cursor() as first, asyncio.timeout(5), ours._cursor() as second:
                assert first.connection is not second.connection
            stock = AsyncPostgresSaver(pool)
            async with stock._cursor():
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.5), stock._cursor():
                        pass

    asyncio.run(scenario())


def test_concurrent_writes_and_reads_stay_correct(postgres_server: PostgresServer) -> None:
    url = fresh_database(postgres_server)

    async def chain(saver: PooledPostgresSaver, length: int) -> tuple[str, list[str]]:
        thread_id = str(uuid.uuid4())
        config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        checkpoint = empty_checkpoint()
        written: list[str] = []
        for step in range(length):
            checkpoint = create_checkpoint(checkpoint, None, step)
            checkpoint["channel_values"] = {"step": step, "thread": thread_id}
            checkpoint["channel_versions"] = {"step": step + 1, "thread": 1}
            config = await saver.aput(
                config,
                checkpoint,
                {"source": "loop", "step": step},
                {"step": step + 1, "thread": 1},
            )
            await saver.aput_writes(config, [("step", step)], task_id=f"t{step}")
            written.append(config["configurable"]["checkpoint_id"])
            latest = await saver.aget_tuple(
                {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
            )
            assert latest is not None
            assert latest.config["configurable"]["checkpoint_id"] == written[-1]
            assert latest.checkpoint["channel_values"]["thread"] == thread_id
        return thread_id, written

    async def scenario() -> None:
        async with _pool(url) as pool:
            saver = PooledPostgresSaver(pool)
            results = await asyncio.gather(*(chain(saver, 15) for _ in range(24)))
            for thread_id, written in results:
                listed = [
                    t.config["configurable"]["checkpoint_id"]
                    async for t in saver.alist({"configurable": {"thread_id": thread_id}})
                ]
                assert listed == list(reversed(written))

    asyncio.run(scenario())


def test_concurrent_runs_through_the_service(pg_service: Service) -> None:
    async def one(index: int) -> None:
        client = pg_service.client("alice" if index % 2 else "bob")
        thread = await client.threads.create()
        text = f"message {index}"
        result = await client.runs.wait(thread["thread_id"], GRAPH_ID, input=say(text))
        assert isinstance(result, dict)
        assert [m["content"] for m in result["messages"]] == [text, f"echo: {text}"]

    async def scenario() -> None:
        await asyncio.gather(*(one(i) for i in range(16)))

    asyncio.run(scenario())
