"""Background runs on the embedded SQLite file: the same queue table, one process."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.service import Service

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
