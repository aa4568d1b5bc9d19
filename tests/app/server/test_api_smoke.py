"""The core path end to end through langgraph-sdk: thread, run, state."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.service import Service

pytestmark = pytest.mark.integration


async def _thread_run_and_state(service: Service) -> None:
    client = service.client("alice")
    thread = await client.threads.create()
    result = await client.runs.wait(thread["thread_id"], GRAPH_ID, input=say("hi"))
    assert isinstance(result, dict)
    assert [m["type"] for m in result["messages"]] == ["human", "ai"]
    assert result["messages"][-1]["content"] == "echo: hi"
    state = await client.threads.get_state(thread["thread_id"])
    values: Any = state["values"]
    assert values["messages"][-1]["content"] == "echo: hi"
    assert state["next"] == []
    assert state["checkpoint"]["thread_id"] == thread["thread_id"]


@pytest.mark.parametrize("backend", ["sqlite_service", "pg_service"])
def test_thread_run_and_state(backend: str, request: pytest.FixtureRequest) -> None:
    service: Service = request.getfixturevalue(backend)
    asyncio.run(_thread_run_and_state(service))
