"""A run's bookkeeping in two transactions, on both backends: `start_run` takes the lease,
gives the thread its graph and records the run, all or nothing, and says why not (no such
thread of the owner's, another graph's thread, busy); `end_run` records the outcome and frees
the thread, only while the run still holds it."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from agent_service.persistence.backends import Persistence, open_persistence
from agent_service.persistence.migrations import migrate_sqlite
from agent_service.persistence.records import RunRecord, RunStart, ServiceTables

from tests.app.server.conftest import fresh_database, make_settings
from tools.kit.servers import PostgresServer

pytestmark = pytest.mark.integration


def _run(thread_id: str, owner: str = "alice", graph_id: str = "echo_agent") -> RunRecord:
    now = datetime.now(UTC)
    return RunRecord(
        run_id=str(uuid.uuid4()),
        thread_id=thread_id,
        owner=owner,
        assistant_id=graph_id,
        graph_id=graph_id,
        status="running",
        metadata={"n": 1},
        multitask_strategy="reject",
        error=None,
        created_at=now,
        updated_at=now,
    )


async def _scenario(tables: ServiceTables) -> None:
    thread_id = str(uuid.uuid4())
    await tables.create_thread(thread_id, "alice", {}, None)
    first = _run(thread_id)
    assert await tables.start_run(first, 30) == RunStart(
        started=True, thread_found=True, thread_graph_id=None
    )
    thread = await tables.get_thread(thread_id, "alice")
    assert thread is not None
    assert (thread.status, thread.graph_id) == ("busy", "echo_agent")
    started = await tables.get_run(first.run_id, "alice")
    assert started is not None
    assert started.status == "running"

    # The lease is taken: nothing of the second run is written.
    second = _run(thread_id)
    assert await tables.start_run(second, 30) == RunStart(
        started=False, thread_found=True, thread_graph_id="echo_agent"
    )
    assert await tables.get_run(second.run_id, "alice") is None
    # Someone else's thread is never claimed, whatever its lease, nor shown to exist.
    assert await tables.start_run(_run(thread_id, owner="mallory"), 30) == RunStart(
        started=False, thread_found=False
    )
    assert await tables.start_run(_run(str(uuid.uuid4())), 30) == RunStart(
        started=False, thread_found=False
    )

    # Ending a run that does not hold the lease records it but frees nothing.
    await tables.end_run(second.run_id, thread_id, "error", "x", "idle")
    thread = await tables.get_thread(thread_id, "alice")
    assert thread is not None
    assert thread.status == "busy"

    await tables.end_run(first.run_id, thread_id, "success", None, "interrupted")
    thread = await tables.get_thread(thread_id, "alice")
    assert thread is not None
    assert thread.status == "interrupted"
    ended = await tables.get_run(first.run_id, "alice")
    assert ended is not None
    assert ended.status == "success"

    # A thread of another graph is not taken, free or not; nothing of the run is written.
    other = _run(thread_id, graph_id="main_agent")
    assert await tables.start_run(other, 30) == RunStart(
        started=False, thread_found=True, thread_graph_id="echo_agent"
    )
    assert await tables.get_run(other.run_id, "alice") is None
    assert (await tables.start_run(_run(thread_id), 30)).started


async def _queued_scenario(persistence: Persistence) -> None:
    """`reject` (queued_holds): a queued run nobody has finished holds the thread, though no
    lease is taken yet; other strategies wait for the lease only."""
    tables = persistence.tables
    thread_id = str(uuid.uuid4())
    await tables.create_thread(thread_id, "alice", {}, "echo_agent")
    queued = replace(_run(thread_id), status="pending")
    await persistence.queue.enqueue(queued, {}, stateless=False, delay_seconds=0)
    rejected = _run(thread_id)
    assert await tables.start_run(rejected, 30, queued_holds=True) == RunStart(
        started=False, thread_found=True, thread_graph_id="echo_agent"
    )
    assert await tables.get_run(rejected.run_id, "alice") is None
    assert (await tables.start_run(_run(thread_id), 30, queued_holds=False)).started


def test_start_and_end_run_on_postgres(tmp_path: Path, postgres_server: PostgresServer) -> None:
    settings = make_settings(tmp_path, database_url=fresh_database(postgres_server))

    async def scenario() -> None:
        async with open_persistence(settings) as persistence:
            assert persistence.pool is not None
            await persistence.pool.wait()
            await _scenario(persistence.tables)
            await _queued_scenario(persistence)

    asyncio.run(scenario())


def test_start_and_end_run_on_sqlite(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_persistence(make_settings(tmp_path)) as persistence:
            await migrate_sqlite(persistence)
            await _scenario(persistence.tables)
            await _queued_scenario(persistence)

    asyncio.run(scenario())
