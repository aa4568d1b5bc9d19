"""assistants.* calls of langgraph-sdk and RemoteGraph.get_graph, against PostgreSQL + Redis:
created assistants are their creator's (404 to anyone else), versioned, used by runs with their
config and context, and limited to the graphs PRINCIPAL_GRAPHS allows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from agent_service.graphs.source import Graphs, GraphSource
from agent_service.settings import Settings
from langchain_core.runnables import RunnableConfig
from langgraph.cache.base import BaseCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.pregel.remote import RemoteGraph
from langgraph.runtime import get_runtime
from langgraph.store.base import BaseStore
from langgraph_sdk.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableEntityError,
)
from typing_extensions import TypedDict

from tests.app.server.conformance.backing import pg_redis_service
from tests.app.server.conformance.sdk_calls import covers
from tests.app.server.graphs import GRAPH_ID, build_test_graphs, say
from tests.app.server.service import Service
from tools.kit.servers import PostgresServer

pytestmark = pytest.mark.integration

CONTEXT_GRAPH = "context_agent"


class Context(TypedDict, total=False):
    tone: str
    audience: str


class ContextState(TypedDict, total=False):
    note: str
    seen_context: dict[str, Any]
    seen_configurable: dict[str, Any]
    inner_ran: bool


def _look(state: ContextState, config: RunnableConfig) -> dict[str, Any]:
    configurable = config.get("configurable", {})
    return {
        "seen_context": dict(get_runtime(Context).context or {}),
        "seen_configurable": {
            k: configurable[k] for k in ("persona", "level") if k in configurable
        },
    }


def _inner(state: ContextState) -> dict[str, Any]:
    return {"inner_ran": True}


def _graphs(
    *,
    checkpointer: BaseCheckpointSaver[Any],
    store: BaseStore,
    cache: BaseCache[Any],
    model: Any,
) -> Graphs:
    """The echo graph, plus a graph that records the context and configurable it ran with and
    calls a subgraph (`child`)."""
    child = StateGraph(ContextState)
    child.add_node("inner", _inner)
    child.add_edge(START, "inner")
    child.add_edge("inner", END)
    builder = StateGraph(ContextState, context_schema=Context)
    builder.add_node("look", _look)
    builder.add_node("child", child.compile())
    builder.add_edge(START, "look")
    builder.add_edge("look", "child")
    builder.add_edge("child", END)
    graphs = dict(
        build_test_graphs(checkpointer=checkpointer, store=store, cache=cache, model=model)
    )
    graphs[CONTEXT_GRAPH] = builder.compile(checkpointer=checkpointer, store=store)
    return graphs


def _source(_settings: Settings) -> GraphSource:
    return GraphSource(build=_graphs, model=None, model_description="test graphs (fake model)")


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[Service]:
    with pg_redis_service(
        Path(tmp_path_factory.mktemp("assistants")),
        postgres_server,
        graph_source=_source,
        # Bob may use the echo graph only.
        principal_graphs={"bob": [GRAPH_ID]},
        admin_principals="carol",
    ) as (running, _url):
        yield running


def _unique() -> str:
    return uuid.uuid4().hex[:8]


@covers("assistants.create", "assistants.get", "assistants.search", "assistants.count")
def test_create_then_find_it_among_the_callers_assistants_only(service: Service) -> None:
    async def scenario() -> None:
        alice, bob = service.client("alice"), service.client("bob")
        tag = _unique()
        created = await alice.assistants.create(
            CONTEXT_GRAPH,
            config={"configurable": {"persona": "pirate"}, "tags": ["t1"]},
            context={"tone": "dry"},
            metadata={"tag": tag, "rank": 2},
            name=f"pirate-{tag}",
            description="talks like a pirate",
        )
        assert created["graph_id"] == CONTEXT_GRAPH
        assert created["version"] == 1
        assert created["config"] == {"configurable": {"persona": "pirate"}, "tags": ["t1"]}
        assert created["context"] == {"tone": "dry"}
        assert created["name"] == f"pirate-{tag}"
        assert created["description"] == "talks like a pirate"
        second = await alice.assistants.create(
            GRAPH_ID, metadata={"tag": tag, "rank": 1}, name=f"echo-{tag}"
        )
        assert await alice.assistants.get(created["assistant_id"]) == created

        found = await alice.assistants.search(metadata={"tag": tag})
        assert {a["assistant_id"] for a in found} == {
            created["assistant_id"],
            second["assistant_id"],
        }
        by_name = await alice.assistants.search(
            metadata={"tag": tag}, sort_by="name", sort_order="asc"
        )
        assert [a["name"] for a in by_name] == [f"echo-{tag}", f"pirate-{tag}"]
        only = await alice.assistants.search(graph_id=CONTEXT_GRAPH, metadata={"tag": tag})
        assert [a["assistant_id"] for a in only] == [created["assistant_id"]]
        selected = await alice.assistants.search(
            metadata={"tag": tag}, select=["assistant_id", "version"]
        )
        assert all(set(a) == {"assistant_id", "version"} for a in selected)
        page = await alice.assistants.search(
            metadata={"tag": tag}, limit=1, response_format="object"
        )
        assert len(page["assistants"]) == 1
        assert page["next"] == "1"
        built_in: Any = await alice.assistants.search(graph_id=GRAPH_ID)
        assert any(a["metadata"].get("created_by") == "system" for a in built_in)
        assert await alice.assistants.count(metadata={"tag": tag}) == 2
        assert await alice.assistants.count(graph_id=CONTEXT_GRAPH, metadata={"tag": tag}) == 1

        # Another principal neither finds nor reads them.
        assert await bob.assistants.search(metadata={"tag": tag}) == []
        assert await bob.assistants.count(metadata={"tag": tag}) == 0
        with pytest.raises(NotFoundError):
            await bob.assistants.get(second["assistant_id"])

        # if_exists: the same id again.
        again = await alice.assistants.create(
            GRAPH_ID, assistant_id=second["assistant_id"], if_exists="do_nothing"
        )
        assert again == second
        with pytest.raises(ConflictError):
            await alice.assistants.create(GRAPH_ID, assistant_id=second["assistant_id"])
        # Another principal's id is taken, not revealed.
        with pytest.raises(ConflictError, match="taken"):
            await bob.assistants.create(GRAPH_ID, assistant_id=second["assistant_id"])
        assert (await alice.assistants.get(second["assistant_id"]))["graph_id"] == GRAPH_ID

    asyncio.run(scenario())


@covers(
    "assistants.update", "assistants.get_versions", "assistants.set_latest", "assistants.delete"
)
def test_versions_update_and_roll_back_then_delete(service: Service) -> None:
    async def scenario() -> None:
        alice, bob = service.client("alice"), service.client("bob")
        first = await alice.assistants.create(
            CONTEXT_GRAPH, config={"configurable": {"persona": "v1"}}, metadata={"a": 1}
        )
        assistant_id = first["assistant_id"]
        second = await alice.assistants.update(
            assistant_id, config={"configurable": {"persona": "v2"}}, metadata={"b": 2}
        )
        assert second["version"] == 2
        assert second["config"] == {"configurable": {"persona": "v2"}}
        assert second["metadata"] == {"a": 1, "b": 2}
        assert second["created_at"] == first["created_at"]
        versions = await alice.assistants.get_versions(assistant_id)
        assert [v["version"] for v in versions] == [2, 1]
        assert versions[1]["config"] == {"configurable": {"persona": "v1"}}
        assert [
            v["version"] for v in await alice.assistants.get_versions(assistant_id, {"b": 2})
        ] == [2]

        rolled = await alice.assistants.set_latest(assistant_id, 1)
        assert rolled["version"] == 1
        assert rolled["config"] == {"configurable": {"persona": "v1"}}
        assert (await alice.assistants.get(assistant_id))["version"] == 1
        # A new version after a roll-back is numbered past every earlier one.
        third = await alice.assistants.update(assistant_id, name="renamed")
        assert (third["version"], third["name"]) == (3, "renamed")
        assert third["config"] == {"configurable": {"persona": "v1"}}
        with pytest.raises(NotFoundError):
            await alice.assistants.set_latest(assistant_id, 99)
        # Concurrent updates each get a version of their own (the row lock orders them).
        racing = await asyncio.gather(
            *(alice.assistants.update(assistant_id, metadata={"racer": i}) for i in range(5))
        )
        assert sorted(a["version"] for a in racing) == [4, 5, 6, 7, 8]
        assert len(await alice.assistants.get_versions(assistant_id, limit=100)) == 8

        for attempt in (
            bob.assistants.update(assistant_id, name="mine"),
            bob.assistants.get_versions(assistant_id),
            bob.assistants.set_latest(assistant_id, 2),
            bob.assistants.delete(assistant_id),
        ):
            with pytest.raises(NotFoundError):
                await attempt
        assert (await alice.assistants.get(assistant_id))["name"] == "renamed"

        # The built-in assistants are shared and read-only.
        with pytest.raises(PermissionDeniedError, match="read-only"):
            await alice.assistants.update(GRAPH_ID, name="hijacked")
        with pytest.raises(PermissionDeniedError, match="read-only"):
            await alice.assistants.delete(GRAPH_ID)
        versions = await alice.assistants.get_versions(GRAPH_ID)
        assert [v["version"] for v in versions] == [1]

        await alice.assistants.delete(assistant_id)
        with pytest.raises(NotFoundError):
            await alice.assistants.get(assistant_id)
        # runs.wait raises httpx's error (langgraph-sdk does not map its statuses).
        with pytest.raises(httpx.HTTPStatusError, match="404"):
            await alice.runs.wait(None, assistant_id, input={"note": "x"})

    asyncio.run(scenario())


def test_a_run_with_a_created_assistant_uses_its_config_and_context(service: Service) -> None:
    async def scenario() -> None:
        alice, bob = service.client("alice"), service.client("bob")
        assistant = await alice.assistants.create(
            CONTEXT_GRAPH,
            config={"configurable": {"persona": "pirate", "level": 3}},
            context={"tone": "dry", "audience": "kids"},
        )
        assistant_id = assistant["assistant_id"]
        result: Any = await alice.runs.wait(None, assistant_id, input={"note": "hi"})
        assert result["seen_context"] == {"tone": "dry", "audience": "kids"}
        assert result["seen_configurable"] == {"persona": "pirate", "level": 3}
        assert result["inner_ran"] is True

        # The run's own config and context win key by key.
        result = await alice.runs.wait(
            None,
            assistant_id,
            input={"note": "hi"},
            config={"configurable": {"persona": "robot"}},
            context={"tone": "warm"},
        )
        assert result["seen_context"] == {"tone": "warm", "audience": "kids"}
        assert result["seen_configurable"] == {"persona": "robot", "level": 3}

        # A new version applies to the next run; a thread run records the assistant used.
        await alice.assistants.update(assistant_id, context={"tone": "v2"})
        thread = await alice.threads.create()
        result = await alice.runs.wait(thread["thread_id"], assistant_id, input={"note": "t"})
        assert result["seen_context"] == {"tone": "v2"}

        with pytest.raises(httpx.HTTPStatusError, match="404"):
            await bob.runs.wait(None, assistant_id, input={"note": "hi"})

    asyncio.run(scenario())


def test_careless_and_hostile_creation_is_refused(service: Service) -> None:
    async def scenario() -> None:
        alice, bob = service.client("alice"), service.client("bob")
        # A graph outside the caller's allow-list: 403, and not listed either.
        with pytest.raises(PermissionDeniedError, match="PRINCIPAL_GRAPHS"):
            await bob.assistants.create(CONTEXT_GRAPH)
        assert await bob.assistants.search(graph_id=CONTEXT_GRAPH) == []
        with pytest.raises(PermissionDeniedError, match="PRINCIPAL_GRAPHS"):
            await bob.assistants.get(CONTEXT_GRAPH)
        # Moving one's own assistant onto a graph outside the allow-list: 403 too.
        own = await bob.assistants.create(GRAPH_ID)
        with pytest.raises(PermissionDeniedError, match="PRINCIPAL_GRAPHS"):
            await bob.assistants.update(own["assistant_id"], graph_id=CONTEXT_GRAPH)
        with pytest.raises(UnprocessableEntityError, match="graph_id: unknown graph"):
            await alice.assistants.create("no_such_graph")
        with pytest.raises(UnprocessableEntityError, match="metadata"):
            await alice.assistants.create(GRAPH_ID, metadata={"blob": "x" * 20_000})
        with pytest.raises(UnprocessableEntityError, match="callbacks"):
            await alice.assistants.create(GRAPH_ID, config=cast(Any, {"callbacks": ["x"]}))
        with pytest.raises(UnprocessableEntityError, match="recursion_limit"):
            await alice.assistants.create(GRAPH_ID, config={"recursion_limit": 10**6})
        with pytest.raises(UnprocessableEntityError, match="tags"):
            await alice.assistants.create(GRAPH_ID, config=cast(Any, {"tags": "one"}))
        with pytest.raises(UnprocessableEntityError, match="assistant_id"):
            await alice.assistants.create(GRAPH_ID, assistant_id="main_agent")
        with pytest.raises(UnprocessableEntityError, match="delete_threads"):
            await alice.assistants.delete(own["assistant_id"], delete_threads=True)
        with pytest.raises(UnprocessableEntityError, match="version"):
            await alice.assistants.set_latest(own["assistant_id"], 0)

    asyncio.run(scenario())


@covers("assistants.get_graph", "assistants.get_schemas", "assistants.get_subgraphs")
def test_graph_schemas_and_subgraphs_come_from_the_compiled_graph(service: Service) -> None:
    async def scenario() -> None:
        alice = service.client("alice")
        drawn = await alice.assistants.get_graph(GRAPH_ID)
        assert {n["id"] for n in drawn["nodes"]} == {
            "__start__",
            "remember",
            "respond",
            "approve",
            "__end__",
        }
        assert {(e["source"], e["target"]) for e in drawn["edges"]} >= {
            ("__start__", "remember"),
            ("remember", "respond"),
            ("approve", "__end__"),
        }
        flat = await alice.assistants.get_graph(CONTEXT_GRAPH)
        deep = await alice.assistants.get_graph(CONTEXT_GRAPH, xray=True)
        assert "child" in {n["id"] for n in flat["nodes"]}
        assert "child:inner" in {n["id"] for n in deep["nodes"]}
        assert "child:inner" not in {n["id"] for n in flat["nodes"]}

        schemas = await alice.assistants.get_schemas(GRAPH_ID)
        assert schemas["graph_id"] == GRAPH_ID
        assert schemas["input_schema"] is not None
        assert "messages" in schemas["input_schema"]["properties"]
        assert schemas["state_schema"] is not None
        assert {"messages", "approved", "respond_calls"} <= set(
            schemas["state_schema"]["properties"]
        )
        context = await alice.assistants.get_schemas(CONTEXT_GRAPH)
        assert context["context_schema"] is not None
        assert set(context["context_schema"]["properties"]) == {"tone", "audience"}

        subgraphs = await alice.assistants.get_subgraphs(CONTEXT_GRAPH)
        assert set(subgraphs) == {"child"}
        assert subgraphs["child"]["state_schema"] is not None
        assert "inner_ran" in subgraphs["child"]["state_schema"]["properties"]
        assert await alice.assistants.get_subgraphs(GRAPH_ID) == {}
        assert set(await alice.assistants.get_subgraphs(CONTEXT_GRAPH, namespace="child")) == {
            "child"
        }

        # A created assistant answers for its graph; another principal's is a 404.
        created = await alice.assistants.create(CONTEXT_GRAPH)
        mine = await alice.assistants.get_graph(created["assistant_id"], xray=1)
        assert mine == deep
        bob = service.client("bob")
        for call in (
            bob.assistants.get_graph(created["assistant_id"]),
            bob.assistants.get_schemas(created["assistant_id"]),
            bob.assistants.get_subgraphs(created["assistant_id"]),
        ):
            with pytest.raises(NotFoundError):
                await call
        with pytest.raises(UnprocessableEntityError, match="xray"):
            await alice.assistants.get_graph(GRAPH_ID, params={"xray": "deep"})

    asyncio.run(scenario())


def test_remote_graph_draws_the_graph(service: Service) -> None:
    async def scenario() -> None:
        remote = RemoteGraph(CONTEXT_GRAPH, client=service.client("alice"))
        drawn = await remote.aget_graph(xray=True)
        assert {"look", "child:inner"} <= set(drawn.nodes)
        assert any(e.source == "look" for e in drawn.edges)

    asyncio.run(scenario())


def test_gdpr_export_and_delete_cover_assistants(service: Service) -> None:
    async def scenario() -> None:
        carol = service.client("carol")
        assistant = await carol.assistants.create(GRAPH_ID, metadata={"mine": True})
        await carol.assistants.update(assistant["assistant_id"], name="second")
        http = carol.http
        get: Callable[[str], Awaitable[Any]] = http.get
        exported = await get("/users/carol/export")
        assert [(a["assistant_id"], a["version"]) for a in exported["assistants"]] == [
            (assistant["assistant_id"], 2),
            (assistant["assistant_id"], 1),
        ]
        with service.http("carol") as sync_http:
            answer = sync_http.delete("/users/carol")
        assert answer.status_code == 200, answer.text
        assert answer.json()["deleted"]["assistants"] == 1
        with pytest.raises(NotFoundError):
            await carol.assistants.get(assistant["assistant_id"])

    asyncio.run(scenario())


def test_the_embedded_sqlite_backend_serves_the_same_assistant_calls(
    sqlite_service: Service,
) -> None:
    async def scenario() -> None:
        alice, bob = sqlite_service.client("alice"), sqlite_service.client("bob")
        created = await alice.assistants.create(
            GRAPH_ID, config={"configurable": {"delay": 0}}, metadata={"v": 1}
        )
        assistant_id = created["assistant_id"]
        updated = await alice.assistants.update(assistant_id, metadata={"w": 2})
        assert (updated["version"], updated["metadata"]) == (2, {"v": 1, "w": 2})
        versions = await alice.assistants.get_versions(assistant_id)
        assert [v["version"] for v in versions] == [2, 1]
        assert (await alice.assistants.set_latest(assistant_id, 1))["metadata"] == {"v": 1}
        assert await alice.assistants.count(metadata={"v": 1}) == 1
        result: Any = await alice.runs.wait(None, assistant_id, input=say("via assistant"))
        assert result["messages"][-1]["content"] == "echo: via assistant"
        with pytest.raises(NotFoundError):
            await bob.assistants.get(assistant_id)
        await alice.assistants.delete(assistant_id)
        assert await alice.assistants.count(metadata={"v": 1}) == 0

    asyncio.run(scenario())


def _versions_stop_at_the_limit(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each version may carry 1 MiB of config and get_versions reads them all: a loop of
    # updates must end in a 409, not fill the database. (The limit, lowered for the test.)
    from agent_service.api import assistants as api
    from agent_service.persistence import assistant_tables

    monkeypatch.setattr(api, "MAX_ASSISTANT_VERSIONS", 3)
    monkeypatch.setattr(assistant_tables, "MAX_ASSISTANT_VERSIONS", 3)

    async def scenario() -> None:
        alice = service.client("alice")
        assistant_id = (await alice.assistants.create(GRAPH_ID))["assistant_id"]
        for n in (2, 3):
            assert (await alice.assistants.update(assistant_id, metadata={"n": n}))["version"] == n
        with pytest.raises(ConflictError, match="3 versions"):
            await alice.assistants.update(assistant_id, metadata={"n": 4})
        # Rolling back still works, and the refused update left nothing behind.
        assert (await alice.assistants.set_latest(assistant_id, 1))["version"] == 1
        assert [v["version"] for v in await alice.assistants.get_versions(assistant_id)] == [
            3,
            2,
            1,
        ]

    asyncio.run(scenario())


@covers("assistants.update")
def test_an_assistant_keeps_a_bounded_number_of_versions(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    _versions_stop_at_the_limit(service, monkeypatch)


@covers("assistants.update")
def test_the_embedded_sqlite_backend_bounds_versions_too(
    sqlite_service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    _versions_stop_at_the_limit(sqlite_service, monkeypatch)
