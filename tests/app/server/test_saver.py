"""The PostgreSQL checkpointer: calls overlap, results stay correct, and a superstep's writes
and checkpoint are one transaction."""

from __future__ import annotations

import asyncio
import operator
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from agent_service.persistence.guard import GuardedPostgresSaver, ThreadGone
from agent_service.persistence.pool import CONNECTION_KWARGS, Pool
from agent_service.persistence.saver import PooledPostgresSaver
from langgraph.checkpoint.base import create_checkpoint, empty_checkpoint
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import END, START, StateGraph
from psycopg.pq import Trace
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


class _Steps(TypedDict):
    log: Annotated[list[str], operator.add]


def _two_steps(saver: PooledPostgresSaver) -> Any:
    builder = StateGraph(_Steps)
    builder.add_node("first", lambda state: {"log": ["first"]})
    builder.add_node("second", lambda state: {"log": ["second"]})
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    builder.add_edge("second", END)
    return builder.compile(checkpointer=saver)


def test_a_superstep_is_one_transaction(postgres_server: PostgresServer) -> None:
    """A task's writes are stored in the transaction of the checkpoint that follows them (the
    rows share their inserting transaction id, xmin), and with durability "sync" the next
    superstep starts only after it committed: nothing is lost, nothing is written twice."""
    url = fresh_database(postgres_server)
    thread_id = str(uuid.uuid4())

    async def scenario() -> None:
        async with _pool(url) as pool:
            graph = _two_steps(PooledPostgresSaver(pool))
            config: Any = {"configurable": {"thread_id": thread_id}}
            result = await graph.ainvoke({"log": []}, config, durability="sync")
            assert result == {"log": ["first", "second"]}
            async with pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT checkpoint_id, parent_checkpoint_id, xmin::text AS tx "
                    "FROM checkpoints WHERE thread_id = %s",
                    (thread_id,),
                )
                checkpoints = await cur.fetchall()
                cur = await conn.execute(
                    "SELECT checkpoint_id, task_id, channel, xmin::text AS tx "
                    "FROM checkpoint_writes WHERE thread_id = %s",
                    (thread_id,),
                )
                writes = await cur.fetchall()
            listed = [t async for t in graph.checkpointer.alist(config)]
        # The input, `first` and `second` supersteps: three checkpoints after the empty one.
        assert len(checkpoints) == 4
        tx_of_child = {c["parent_checkpoint_id"]: c["tx"] for c in checkpoints}
        assert writes, "each task's writes are stored"
        for write in writes:
            assert write["tx"] == tx_of_child[write["checkpoint_id"]], write
        assert len({c["tx"] for c in checkpoints}) == len(checkpoints)
        assert listed[0].checkpoint["channel_values"]["log"] == ["first", "second"]

    asyncio.run(scenario())


def test_writes_no_checkpoint_follows_are_stored_after_the_window(
    postgres_server: PostgresServer,
) -> None:
    """An interrupt or a failing task ends a run with writes and no further checkpoint: they
    are written on their own once the window closes, and a later read sees them."""
    url = fresh_database(postgres_server)

    async def scenario() -> None:
        async with _pool(url) as pool:
            saver = PooledPostgresSaver(pool, coalesce_seconds=0.01)
            config: Any = {"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}}
            checkpoint = empty_checkpoint()
            config = await saver.aput(config, checkpoint, {"source": "input", "step": -1}, {})
            await saver.aput_writes(config, [("log", "pending")], task_id="t1")
            stored = await saver.aget_tuple(config)
            assert stored is not None
            assert stored.pending_writes == [("t1", "log", "pending")]

    asyncio.run(scenario())


def test_a_failed_checkpoint_fails_the_writes_it_carried(postgres_server: PostgresServer) -> None:
    """All or nothing: when the checkpoint's transaction fails, the writes it took are not
    stored either, and their `aput_writes` call fails with the same error."""
    url = fresh_database(postgres_server)

    class Refusing(PooledPostgresSaver):
        async def before_write(self, cur: Any, config: Any) -> None:
            if config["configurable"].get("refuse"):
                raise RuntimeError("refused")

    async def scenario() -> None:
        async with _pool(url) as pool:
            saver = Refusing(pool, coalesce_seconds=5)
            thread_id = str(uuid.uuid4())
            config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
            config = await saver.aput(config, empty_checkpoint(), {"source": "input"}, {})
            writes = asyncio.create_task(saver.aput_writes(config, [("log", "lost")], task_id="t1"))
            await asyncio.sleep(0)  # the writes wait for the checkpoint
            refused: Any = {"configurable": {**config["configurable"], "refuse": True}}
            checkpoint = create_checkpoint(empty_checkpoint(), None, 0)
            with pytest.raises(RuntimeError, match="refused"):
                await saver.aput(refused, checkpoint, {"source": "loop", "step": 0}, {})
            with pytest.raises(RuntimeError, match="refused"):
                await writes
            async with pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT count(*) AS n FROM checkpoint_writes WHERE thread_id = %s",
                    (thread_id,),
                )
                row = await cur.fetchone()
                cur = await conn.execute(
                    "SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s", (thread_id,)
                )
                checkpoints = await cur.fetchone()
            assert row is not None
            assert row["n"] == 0
            assert checkpoints is not None
            assert checkpoints["n"] == 1

    asyncio.run(scenario())


def test_the_owner_check_aborts_the_superstep_and_costs_no_round_trip(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """persistence.guard: the superstep of a run whose thread is no longer its user's raises
    ThreadGone and stores nothing; for the owner, the check, the task's writes and the
    checkpoint reach the server as one pipeline: one Sync in libpq's protocol trace."""
    url = fresh_database(postgres_server)
    thread_id = str(uuid.uuid4())
    trace = tmp_path / "libpq.trace"

    async def superstep(saver: GuardedPostgresSaver, config: Any, step: int) -> Any:
        writes = asyncio.create_task(saver.aput_writes(config, [("log", step)], task_id=f"t{step}"))
        await asyncio.sleep(0)  # the writes wait for the checkpoint
        checkpoint = create_checkpoint(empty_checkpoint(), None, step)
        try:
            saved = await saver.aput(config, checkpoint, {"source": "loop", "step": step}, {})
        finally:
            await asyncio.gather(writes, return_exceptions=True)
        # As LangGraph's loop does: the run's own keys (user_id) stay in the next step's config.
        return {"configurable": {**config["configurable"], **saved["configurable"]}}

    async def stored(pool: Pool) -> tuple[int, int]:
        async with pool.connection() as conn:
            counts = []
            for table in ("checkpoints", "checkpoint_writes"):
                cur = await conn.execute(
                    f"SELECT count(*) AS n FROM {table} WHERE thread_id = %s",
                    (thread_id,),
                )
                row = await cur.fetchone()
                assert row is not None
                counts.append(int(row["n"]))
        return counts[0], counts[1]

    async def scenario() -> None:
        # One connection: the traced one is the one the saver uses.
        async with AsyncConnectionPool(
            url, kwargs=CONNECTION_KWARGS, min_size=1, max_size=1, open=False
        ) as opened:
            await opened.wait()
            pool: Pool = opened  # type: ignore[assignment]
            async with pool.connection() as conn:
                await conn.execute(
                    "INSERT INTO agent_threads (thread_id, owner) VALUES (%s, 'alice')",
                    (thread_id,),
                )
            saver = GuardedPostgresSaver(pool, coalesce_seconds=5)
            alice: Any = {
                "configurable": {"thread_id": thread_id, "checkpoint_ns": "", "user_id": "alice"}
            }
            saved = await saver.aput(alice, empty_checkpoint(), {"source": "input"}, {})
            alice = {"configurable": {**alice["configurable"], **saved["configurable"]}}
            with trace.open("w") as out:
                async with pool.connection() as conn:
                    conn.pgconn.trace(out.fileno())
                    conn.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS)
                alice = await superstep(saver, alice, 0)
                async with pool.connection() as conn:
                    conn.pgconn.untrace()
            assert await stored(pool) == (2, 1)
            sent = [line.split("\t") for line in trace.read_text().splitlines()]
            syncs = [fields for fields in sent if fields[0] == "F" and fields[2] == "Sync"]
            assert len(syncs) == 1, trace.read_text()

            # The thread deleted and its id taken by bob: alice's run writes nothing more.
            async with pool.connection() as conn:
                await conn.execute(
                    "UPDATE agent_threads SET owner = 'bob' WHERE thread_id = %s", (thread_id,)
                )
            with pytest.raises(ThreadGone):
                await superstep(saver, alice, 1)
            assert await stored(pool) == (2, 1)
            # The connection is usable afterwards (the aborted transaction was rolled back).
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")

    asyncio.run(scenario())


def test_a_read_checkpoint_equals_the_upstream_savers(postgres_server: PostgresServer) -> None:
    """Without pending writes the saver builds the read tuple itself (no thread hop): it must
    equal what the upstream AsyncPostgresSaver reads from the same rows, with pending writes
    and without."""
    url = fresh_database(postgres_server)

    async def scenario() -> None:
        async with _pool(url) as pool:
            ours = PooledPostgresSaver(pool, coalesce_seconds=0.01)
            upstream = AsyncPostgresSaver(pool)
            thread: Any = {"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}}
            config = await ours.aput(thread, empty_checkpoint(), {"source": "input"}, {})
            checkpoint = create_checkpoint(empty_checkpoint(), None, 0)
            checkpoint["channel_values"] = {"messages": ["hello", {"n": 1}], "count": 3}
            checkpoint["channel_versions"] = {"messages": 1, "count": 1}
            config = await ours.aput(
                config, checkpoint, {"source": "loop", "step": 0}, {"messages": 1, "count": 1}
            )
            read = await ours.aget_tuple(thread)
            assert read is not None
            assert read.pending_writes == []
            assert read.parent_config is not None
            assert read == await upstream.aget_tuple(thread)
            await ours.aput_writes(config, [("count", 4)], task_id="t1")
            pending = await ours.aget_tuple(thread)
            assert pending is not None
            assert pending.pending_writes == [("t1", "count", 4)]
            assert pending == await upstream.aget_tuple(thread)

    asyncio.run(scenario())


def test_a_cancelled_superstep_on_a_lost_connection_stays_cancelled(
    postgres_server: PostgresServer,
) -> None:
    """A superstep cancelled while its connection is lost (the server ended it, or psycopg
    closed it when a cancel request went unanswered) ends with CancelledError: the rollback
    of a transaction on a dead connection must not replace the cancellation with the
    connection's own error (asyncio.timeout and LangGraph's run cancellation read it)."""
    url = fresh_database(postgres_server)

    class LosesItsConnection(PooledPostgresSaver):
        async def before_write(self, cur: Any, config: Any) -> None:
            await cur.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            await asyncio.sleep(0.2)  # the server ends the session meanwhile
            raise asyncio.CancelledError

    async def scenario() -> None:
        async with _pool(url) as pool:
            saver = LosesItsConnection(pool)
            config: Any = {"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}}
            with pytest.raises(asyncio.CancelledError):
                await saver.aput(config, empty_checkpoint(), {"source": "input"}, {})

    asyncio.run(scenario())
