"""Every endpoint of the LangGraph Server API subset, driven through langgraph-sdk."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from agent_service.graphs.assistants import assistant_id_for
from langgraph_sdk.errors import ConflictError, NotFoundError

from tests.app.server.conformance.sdk_calls import covers
from tests.app.server.graphs import GRAPH_ID
from tests.app.server.service import Service

pytestmark = pytest.mark.integration


def _say(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def test_ok_and_info(pg_service: Service) -> None:
    async def scenario() -> None:
        client = pg_service.client()
        assert await client.http.get("/ok") == {"ok": True}
        info = await client.http.get("/info")
        assert info["graphs"] == [GRAPH_ID]
        assert info["persistence"] == "postgres"
        assert info["model"] == "test graphs (fake model)"

    asyncio.run(scenario())


@covers("assistants.search", "assistants.get")
def test_assistants_search_and_get(pg_service: Service) -> None:
    async def scenario() -> None:
        client = pg_service.client()
        found = await client.assistants.search()
        assert [a["graph_id"] for a in found] == [GRAPH_ID]
        assert found[0]["assistant_id"] == assistant_id_for(GRAPH_ID)
        assert await client.assistants.search(graph_id="other") == []
        by_id = await client.assistants.get(assistant_id_for(GRAPH_ID))
        by_graph = await client.assistants.get(GRAPH_ID)
        assert by_id == by_graph
        with pytest.raises(NotFoundError, match="assistant 'nope' not found"):
            await client.assistants.get("nope")

    asyncio.run(scenario())


@covers("threads.create", "threads.get", "threads.search", "threads.delete")
def test_thread_lifecycle(pg_service: Service) -> None:
    async def scenario() -> None:
        client = pg_service.client()
        thread = await client.threads.create(metadata={"topic": "billing"})
        other = await client.threads.create(metadata={"topic": "other"})
        assert thread["status"] == "idle"
        fetched = await client.threads.get(thread["thread_id"])
        assert fetched["metadata"] == {"topic": "billing"}
        found = await client.threads.search(metadata={"topic": "billing"})
        assert [t["thread_id"] for t in found] == [thread["thread_id"]]
        both = await client.threads.search(limit=10)
        assert {t["thread_id"] for t in both} == {thread["thread_id"], other["thread_id"]}
        page = await client.threads.search(
            limit=1, offset=1, sort_by="created_at", sort_order="asc"
        )
        assert [t["thread_id"] for t in page] == [other["thread_id"]]
        with pytest.raises(ConflictError):
            await client.threads.create(thread_id=thread["thread_id"])
        same = await client.threads.create(thread_id=thread["thread_id"], if_exists="do_nothing")
        assert same["thread_id"] == thread["thread_id"]
        await client.threads.delete(thread["thread_id"])
        with pytest.raises(NotFoundError):
            await client.threads.get(thread["thread_id"])

    asyncio.run(scenario())


@covers("runs.wait", "threads.get_state", "threads.get_history")
def test_runs_wait_state_and_history(pg_service: Service) -> None:
    async def scenario() -> None:
        client = pg_service.client()
        thread = await client.threads.create()
        tid = thread["thread_id"]
        await client.runs.wait(tid, GRAPH_ID, input=_say("one"))
        second = await client.runs.wait(tid, GRAPH_ID, input=_say("two"))
        assert isinstance(second, dict)
        assert [m["content"] for m in second["messages"]] == [
            "one",
            "echo: one",
            "two",
            "echo: two",
        ]
        fetched: Any = await client.threads.get(tid)
        assert fetched["status"] == "idle"
        assert fetched["metadata"]["graph_id"] == GRAPH_ID
        assert len(fetched["values"]["messages"]) == 4
        history = await client.threads.get_history(tid, limit=100)
        assert len(history) >= 6
        assert (
            history[0]["checkpoint"]["checkpoint_id"]
            == (await client.threads.get_state(tid))["checkpoint"]["checkpoint_id"]
        )
        older = await client.threads.get_history(tid, limit=2, before=history[0]["checkpoint"])
        assert [h["checkpoint"]["checkpoint_id"] for h in older] == [
            h["checkpoint"]["checkpoint_id"] for h in history[1:3]
        ]

    asyncio.run(scenario())


@covers("runs.stream")
def test_runs_stream_modes(pg_service: Service) -> None:
    async def scenario() -> None:
        client = pg_service.client()
        thread = await client.threads.create()
        events: dict[str, list[Any]] = {}
        async for part in client.runs.stream(
            thread["thread_id"],
            GRAPH_ID,
            input=_say("stream me"),
            stream_mode=["values", "updates", "messages", "custom"],
        ):
            events.setdefault(part.event, []).append(part.data)
        assert events["metadata"][0]["run_id"]
        assert events["values"][-1]["messages"][-1]["content"] == "echo: stream me"
        assert {name for update in events["updates"] for name in update} >= {
            "remember",
            "respond",
        }
        assert events["custom"] == [{"remembered": "stream me"}]
        # The fake model streams its reply in chunks: partial messages, then the whole one.
        partial = events["messages/partial"]
        assert len(partial) > 1
        assert partial[-1][0]["content"] == "streamed reply"
        assert "messages/metadata" in events
        assert "error" not in events

        tuples = [
            part.data
            async for part in client.runs.stream(
                thread["thread_id"], GRAPH_ID, input=_say("again"), stream_mode="messages-tuple"
            )
            if part.event == "messages"
        ]
        assert tuples
        assert all(len(t) == 2 for t in tuples)
        assert "".join(t[0]["content"] for t in tuples).startswith("streamed reply")

    asyncio.run(scenario())


def test_stateless_runs(pg_service: Service) -> None:
    async def scenario() -> None:
        client = pg_service.client()
        result = await client.runs.wait(None, GRAPH_ID, input=_say("no thread"))
        assert isinstance(result, dict)
        assert result["messages"][-1]["content"] == "echo: no thread"
        names = [
            part.event
            async for part in client.runs.stream(
                None, GRAPH_ID, input=_say("stream"), stream_mode="updates"
            )
        ]
        assert names[0] == "metadata"
        assert names.count("updates") == 2
        # Stateless runs leave no thread behind.
        assert await client.threads.search() == []

    asyncio.run(scenario())


def test_interrupt_and_resume(pg_service: Service) -> None:
    async def scenario() -> None:
        client = pg_service.client()
        thread = await client.threads.create()
        tid = thread["thread_id"]
        paused = await client.runs.wait(tid, GRAPH_ID, input=_say("please approve the refund"))
        assert isinstance(paused, dict)
        [pending] = paused["__interrupt__"]
        assert pending["value"]["question"] == "approve?"
        assert (await client.threads.get(tid))["status"] == "interrupted"
        state = await client.threads.get_state(tid)
        assert state["next"] == ["approve"]
        assert state["interrupts"][0]["id"] == pending["id"]

        resumed = await client.runs.wait(tid, GRAPH_ID, command={"resume": "yes"})
        assert isinstance(resumed, dict)
        assert resumed["approved"] == "yes"
        assert "__interrupt__" not in resumed
        assert (await client.threads.get(tid))["status"] == "idle"

        # The same through the stream endpoint.
        await client.runs.wait(tid, GRAPH_ID, input=_say("approve again"))
        parts = [
            part
            async for part in client.runs.stream(
                tid, GRAPH_ID, command={"resume": "no"}, stream_mode="values"
            )
        ]
        assert parts[-1].data["approved"] == "no"

    asyncio.run(scenario())


def test_multitask_reject_and_enqueue(pg_service: Service) -> None:
    slow: Any = {"configurable": {"delay": 1.5}}

    async def wait_until_busy(client: Any, tid: str) -> None:
        for _ in range(200):
            if (await client.threads.get(tid))["status"] == "busy":
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the first run never started")

    async def scenario() -> None:
        client = pg_service.client()
        thread = await client.threads.create()
        tid = thread["thread_id"]
        first = asyncio.create_task(
            client.runs.wait(tid, GRAPH_ID, input=_say("first"), config=slow)
        )
        await wait_until_busy(client, tid)
        # runs.wait raises httpx's error (it reads the body itself); the body names it.
        with pytest.raises(httpx.HTTPStatusError) as rejected:
            await client.runs.wait(
                tid, GRAPH_ID, input=_say("rejected"), multitask_strategy="reject"
            )
        assert rejected.value.response.status_code == 409
        assert "already has a run in progress" in rejected.value.response.json()["detail"]
        with pytest.raises(ConflictError, match="has a run in progress"):
            await client.threads.delete(tid)
        # The stream endpoint raises the SDK's typed error.
        with pytest.raises(ConflictError, match="already has a run in progress"):
            async for _ in client.runs.stream(tid, GRAPH_ID, input=_say("rejected")):
                pass
        queued = await client.runs.wait(
            tid, GRAPH_ID, input=_say("queued"), multitask_strategy="enqueue"
        )
        await first
        assert isinstance(queued, dict)
        # The enqueued run started after the first ended: it sees the first's messages.
        assert [m["content"] for m in queued["messages"]] == [
            "first",
            "echo: first",
            "queued",
            "echo: queued",
        ]

    asyncio.run(scenario())


@covers("runs.get")
def test_invoke_and_run_lookup(pg_service: Service) -> None:
    async def scenario() -> None:
        client = pg_service.client()
        created: list[Any] = []
        await client.runs.wait(None, GRAPH_ID, input=_say("x"), on_run_created=created.append)
        assert created
        assert created[0]["run_id"]
        first = await client.http.post(
            "/invoke", json={"input": _say("via invoke"), "assistant_id": GRAPH_ID}
        )
        assert first["output"]["messages"][-1]["content"] == "echo: via invoke"
        second = await client.http.post(
            "/invoke",
            json={
                "input": _say("again"),
                "thread_id": first["thread_id"],
                "assistant_id": GRAPH_ID,
            },
        )
        assert second["thread_id"] == first["thread_id"]
        assert len(second["output"]["messages"]) == 4
        run = await client.runs.get(first["thread_id"], second["run_id"])
        assert run["status"] == "success"

    asyncio.run(scenario())
