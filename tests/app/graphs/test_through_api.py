"""The production graphs served by the real service on PostgreSQL, driven by langgraph-sdk."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from agent_service.graphs.build import GRAPH_IDS
from agent_service.graphs.source import registry_graph_source

from tests.app.server.conformance.sdk_calls import covers
from tests.app.server.conftest import fresh_database, make_settings
from tests.app.server.service import Service, serve_in_thread
from tools.kit.programs import REPO_ROOT
from tools.kit.servers import PostgresServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[Service]:
    settings = make_settings(
        tmp_path_factory.mktemp("graphs"),
        database_url=fresh_database(postgres_server),
        principal_roles={"carol": ["approver"]},
    )
    with serve_in_thread(settings, graph_source=registry_graph_source) as running:
        yield running


def say(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def test_info_names_the_graphs_and_the_offline_model(service: Service) -> None:
    info = service.http().get("/info").json()
    assert info["graphs"] == list(GRAPH_IDS)
    assert info["model"].startswith("offline")
    graphs = json.loads((REPO_ROOT / "app" / "langgraph.json").read_text())["graphs"]
    assert sorted(graphs) == sorted(GRAPH_IDS)


def test_main_agent_memory_and_approval(service: Service) -> None:
    async def scenario() -> None:
        client = service.client("alice")
        first, second = await client.threads.create(), await client.threads.create()
        await client.runs.wait(first["thread_id"], "main_agent", input=say("remember that I ski"))
        recalled = await client.runs.wait(
            second["thread_id"], "main_agent", input=say("what do you remember")
        )
        assert isinstance(recalled, dict)
        assert "I ski" in recalled["messages"][-1]["content"]

        paused = await client.runs.wait(
            first["thread_id"], "main_agent", input=say("refund order Z-1 amount 5")
        )
        assert isinstance(paused, dict)
        assert paused["__interrupt__"][0]["value"]["action_requests"][0]["name"] == "issue_refund"
        done = await service.client("carol").runs.wait(
            first["thread_id"],
            "main_agent",
            command={"resume": {"decisions": [{"type": "approve"}]}},
        )
        assert isinstance(done, dict)
        assert "issued for order Z-1" in done["messages"][-1]["content"]
        assert done["model_calls"] == 4

    asyncio.run(scenario())
    exported = service.http().get("/users/alice/export").json()
    namespaces = {tuple(item["namespace"]) for item in exported["store"]}
    assert {
        ("users", "alice", "memories"),
        ("refunds", "alice"),
        ("usage", "alice"),
    } <= namespaces


def test_pii_is_absent_from_the_threads_state_and_the_model_is_metered(
    service: Service,
) -> None:
    async def scenario() -> list[Any]:
        client = service.client("alice")
        thread = await client.threads.create()
        text = "card 4111 1111 1111 1111, mail me at jane@example.com"
        streamed = [
            part.data
            async for part in client.runs.stream(
                thread["thread_id"], "main_agent", input=say(text), stream_mode="values"
            )
        ]
        history = await client.threads.get_history(thread["thread_id"])
        # Every state in the history; the input checkpoint's pending `__start__` task (the
        # request body as sent) is the one place the reducer cannot reach.
        return [*streamed, *(snapshot["values"] for snapshot in history)]

    seen = json.dumps(asyncio.run(scenario()))
    assert "[REDACTED_CARD]" in seen
    assert "4111 1111 1111 1111" not in seen
    assert "jane@example.com" not in seen
    metrics = service.http(None).get("/metrics").text
    assert 'agent_service_model_calls_total{model="offline"}' in metrics
    assert 'agent_service_guardrail_events_total{action="redacted",guardrail="pii"}' in metrics


def test_research_agent_stateless_run(service: Service) -> None:
    async def scenario() -> dict[str, Any]:
        result = await service.client("bob").runs.wait(
            None, "research_agent", input={"question": "glaciers, deserts and reefs"}
        )
        assert isinstance(result, dict)
        return result

    report = asyncio.run(scenario())["report"]
    assert (report["tasks"], report["success_rate"], report["errors"]) == (3, 1.0, {})
    metrics = service.http(None).get("/metrics").text
    assert 'agent_service_research_tasks_total{status="success"}' in metrics


def test_support_agent_escalation_resumes_through_the_api(service: Service) -> None:
    async def scenario() -> None:
        client = service.client("bob")
        thread = await client.threads.create()
        await client.runs.wait(thread["thread_id"], "support_agent", input=say("priority to high"))
        paused = await client.runs.wait(
            thread["thread_id"], "support_agent", input=say("escalate: refund is late")
        )
        assert isinstance(paused, dict)
        assert paused["__interrupt__"][0]["value"]["priority"] == "high"
        state = await client.threads.get_state(thread["thread_id"])
        assert state["next"], "the run waits for the supervisor"
        resumed = await service.client("carol").runs.wait(
            thread["thread_id"],
            "support_agent",
            command={"resume": {"approved": True, "assignee": "kim"}},
        )
        assert isinstance(resumed, dict)
        assert resumed["escalation"]["assignee"] == "kim"

    asyncio.run(scenario())


@covers("store.search_items", "store.put_item")
def test_main_agents_memories_are_the_users_store_items(service: Service) -> None:
    """What main_agent remembers is the user's ["memories"] in the Store API, and what the
    user puts there main_agent recalls, nearest in meaning first (pgvector, real model)."""

    async def scenario() -> None:
        client = service.client("bob")
        thread = await client.threads.create()
        await client.runs.wait(
            thread["thread_id"], "main_agent", input=say("remember that I live in Leeds")
        )
        found = await client.store.search_items(["memories"], query="which city is my home?")
        assert [item["value"]["text"] for item in found["items"]] == ["I live in Leeds"]
        await client.store.put_item(["memories"], "diet", {"text": "I am allergic to peanuts"})
        recalled = await client.runs.wait(
            thread["thread_id"],
            "main_agent",
            input=say("what do you remember about nuts that make me ill?"),
        )
        assert isinstance(recalled, dict)
        answer = recalled["messages"][-1]["content"]
        assert answer.startswith("Done. I remember: I am allergic to peanuts; I live in Leeds")
        # Another principal sees none of it.
        other = await service.client("alice").store.search_items(["memories"], query="Leeds")
        assert "I live in Leeds" not in [item["value"].get("text") for item in other["items"]]

    asyncio.run(scenario())
