"""Two instances with workers on one PostgreSQL database: every queued run is claimed by one
worker only (`FOR UPDATE SKIP LOCKED`), runs of one thread execute one at a time in the
order they were created, and both instances' workers take part."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.app.server.conftest import fresh_database, make_settings
from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.service import Service, serve_in_thread
from tools.kit.servers import PostgresServer

pytestmark = pytest.mark.integration

THREADS = 12
ENQUEUED = 4


def test_two_instances_execute_each_run_once(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = fresh_database(postgres_server)
    shared: dict[str, Any] = {"database_url": url, "run_workers": 3, "run_queue_poll_seconds": 0.05}

    async def scenario(first: Service, second: Service) -> list[Any]:
        clients = [first.client(), second.client()]
        slow: Any = {"configurable": {"delay": 0.2}}
        threads = [(await clients[0].threads.create())["thread_id"] for _ in range(THREADS)]
        runs = [
            await clients[i % 2].runs.create(tid, GRAPH_ID, input=say(f"t{i}"), config=slow)
            for i, tid in enumerate(threads)
        ]
        ordered = threads[0]
        queued = [
            await clients[i % 2].runs.create(
                ordered, GRAPH_ID, input=say(f"q{i}"), multitask_strategy="enqueue"
            )
            for i in range(ENQUEUED)
        ]
        for run in [*runs, *queued]:
            await clients[0].runs.join(run["thread_id"], run["run_id"])
        return [await clients[1].threads.get_state(tid) for tid in threads]

    with (
        serve_in_thread(make_settings(tmp_path / "a", **shared)) as first,
        serve_in_thread(make_settings(tmp_path / "b", **shared)) as second,
    ):
        states = asyncio.run(scenario(first, second))
    texts = [[m["content"] for m in state["values"]["messages"]] for state in states]
    # Each run answered once: one reply per input, in creation order on the shared thread.
    assert texts[0] == [
        "t0",
        "echo: t0",
        *(text for i in range(ENQUEUED) for text in (f"q{i}", f"echo: q{i}")),
    ]
    assert texts[1:] == [[f"t{i}", f"echo: t{i}"] for i in range(1, THREADS)]
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT r.status, q.attempts, q.worker FROM agent_run_queue AS q "
            "JOIN agent_runs AS r USING (run_id)"
        ).fetchall()
    assert len(rows) == THREADS + ENQUEUED
    assert {(status, attempts) for status, attempts, _ in rows} == {("success", 1)}
    # Both instances' workers took runs (the names carry the process and an instance tag).
    assert len({worker for _, _, worker in rows}) == 2
