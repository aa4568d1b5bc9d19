"""Background runs on the embedded SQLite file: the same queue table, one process."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from agent_service.runs import queue as run_queue

from tests.app.server.conftest import make_settings
from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.scrape import scrape, value
from tests.app.server.service import Service, serve_in_thread

pytestmark = pytest.mark.integration


def test_background_runs_on_sqlite(sqlite_service: Service) -> None:
    async def scenario() -> None:
        client = sqlite_service.client()
        tid = (await client.threads.create())["thread_id"]
        first = await client.runs.create(
            tid, GRAPH_ID, input=say("one"), config={"configurable": {"delay": 1}}
        )
        second = await client.runs.create(
            tid, GRAPH_ID, input=say("two"), multitask_strategy="enqueue"
        )
        joined: Any = await client.runs.join(tid, second["run_id"])
        assert [m["content"] for m in joined["messages"]] == [
            "one",
            "echo: one",
            "two",
            "echo: two",
        ]
        statuses = {r["run_id"]: r["status"] for r in await client.runs.list(tid)}
        assert statuses == {first["run_id"]: "success", second["run_id"]: "success"}
        third = await client.runs.create(
            tid, GRAPH_ID, input=say("three"), config={"configurable": {"delay": 5}}
        )
        await client.runs.cancel(tid, third["run_id"], wait=True, action="rollback")
        state: Any = await client.threads.get_state(tid)
        assert [m["content"] for m in state["values"]["messages"]][-1] == "echo: two"
        assert [r["run_id"] for r in await client.runs.list(tid)] == [
            second["run_id"],
            first["run_id"],
        ]

    asyncio.run(scenario())


def test_the_queue_depth_gauge_counts_waiting_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_queue, "DEPTH_PUBLISH_SECONDS", 0.1)
    with serve_in_thread(make_settings(tmp_path)) as service:

        async def scenario() -> None:
            client = service.client()
            for _ in range(3):
                tid = (await client.threads.create())["thread_id"]
                await client.runs.create(tid, GRAPH_ID, input=say("later"), after_seconds=600)

        asyncio.run(scenario())
        # Delayed runs are not due: nothing waits for a worker yet.
        time.sleep(0.3)
        assert value(scrape(service.url), "agent_service_run_queue_depth") == 0
        with service.http() as http:
            tid = http.post("/threads", json={}).json()["thread_id"]
            slow = {"assistant_id": GRAPH_ID, "config": {"configurable": {"delay": 3}}}
            http.post(f"/threads/{tid}/runs", json={**slow, "input": say("a")})
            for text in ("b", "c"):
                http.post(
                    f"/threads/{tid}/runs",
                    json={**slow, "input": say(text), "multitask_strategy": "enqueue"},
                )
        # One runs, two wait behind it on their thread: they run one after another, so the
        # gauge (what the worker HPA scales on) counts their thread once.
        deadline = time.monotonic() + 10
        while value(scrape(service.url), "agent_service_run_queue_depth") != 1:
            assert time.monotonic() < deadline, "the gauge never counted the waiting thread"
            time.sleep(0.1)
