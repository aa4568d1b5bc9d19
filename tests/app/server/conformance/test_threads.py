"""threads.* calls of langgraph-sdk and RemoteGraph's state calls, against PostgreSQL + Redis:
each answer checked against what LangGraph's server gives, and each write tried by another
principal (404), with bad input (4xx naming the field) and under a running run (409)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest
from agent_service.graphs.source import registry_graph_source
from agent_service.persistence.retention import apply_retention
from langchain_core.runnables import RunnableConfig
from langgraph.pregel.remote import RemoteGraph
from langgraph_sdk.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableEntityError,
)
from langgraph_sdk.schema import Checkpoint

from tests.app.server.conformance.backing import pg_redis_service
from tests.app.server.conformance.sdk_calls import covers
from tests.app.server.conftest import make_settings
from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.service import Service
from tools.kit.servers import PostgresServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backed(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[tuple[Service, str]]:
    with pg_redis_service(Path(tmp_path_factory.mktemp("threads")), postgres_server) as backed:
        yield backed


@pytest.fixture(scope="module")
def service(backed: tuple[Service, str]) -> Service:
    return backed[0]


async def _thread_with_a_run(service: Service, text: str = "hello") -> str:
    client = service.client("alice")
    thread = await client.threads.create(graph_id=GRAPH_ID)
    await client.runs.wait(thread["thread_id"], GRAPH_ID, input=say(text))
    return str(thread["thread_id"])


def _checkpoint(fields: dict[str, Any]) -> Checkpoint:
    return cast(Checkpoint, fields)


def _texts(state: Any) -> list[str]:
    return [m["content"] for m in state["values"].get("messages", [])]


@covers("threads.update")
def test_update_merges_metadata_and_sets_the_ttl(service: Service) -> None:
    async def scenario() -> None:
        client = service.client("alice")
        thread = await client.threads.create(metadata={"team": "a", "keep": 1})
        updated: Any = await client.threads.update(
            thread["thread_id"], metadata={"team": "b", "new": True}, ttl=90
        )
        assert updated["metadata"] == {"team": "b", "keep": 1, "new": True}
        assert updated["ttl"] == {"ttl": 90, "strategy": "delete"}
        assert updated["updated_at"] > thread["updated_at"]
        again: Any = await client.threads.get(thread["thread_id"])
        assert again["metadata"] == updated["metadata"]
        update: Callable[..., Awaitable[Any]] = client.threads.update
        assert await update(thread["thread_id"], metadata={"last": 1}, return_minimal=True) is None
        again = await client.threads.get(thread["thread_id"])
        assert again["metadata"]["last"] == 1
        with pytest.raises(NotFoundError):
            await service.client("bob").threads.update(thread["thread_id"], metadata={"x": 1})
        again = await client.threads.get(thread["thread_id"])
        assert "x" not in again["metadata"]
        with pytest.raises(UnprocessableEntityError, match="metadata"):
            await client.threads.update(thread["thread_id"], metadata={"blob": "x" * 20_000})
        with pytest.raises(UnprocessableEntityError, match="ttl"):
            await client.threads.update(thread["thread_id"], metadata={}, ttl=-5)
        with pytest.raises(UnprocessableEntityError, match="graph_id"):
            await client.threads.update(thread["thread_id"], metadata={"graph_id": "other"})

    asyncio.run(scenario())


@covers("threads.create")
def test_create_with_supersteps_starts_the_thread_with_that_history(service: Service) -> None:
    async def scenario() -> None:
        client = service.client("alice")
        steps: Any = [
            {"updates": [{"values": say("imported"), "as_node": "remember"}]},
            {
                "updates": [
                    {
                        "values": {"messages": [{"role": "ai", "content": "echo: imported"}]},
                        "as_node": "respond",
                    }
                ]
            },
        ]
        thread = await client.threads.create(graph_id=GRAPH_ID, supersteps=steps)
        state = await client.threads.get_state(thread["thread_id"])
        assert _texts(state) == ["imported", "echo: imported"]
        history = await client.threads.get_history(thread["thread_id"], limit=100)
        assert [h["metadata"]["source"] for h in history if h["metadata"]][:2] == [
            "update",
            "update",
        ]
        await client.runs.wait(thread["thread_id"], GRAPH_ID, input=say("next"))
        assert _texts(await client.threads.get_state(thread["thread_id"]))[-1] == "echo: next"

        # Nothing is created from supersteps the graph cannot take.
        bad_id = str(uuid.uuid4())
        command = {"values": {}, "as_node": "respond", "command": {"goto": "x"}}
        cases: list[tuple[Any, str]] = [
            ([{"updates": [{"values": {}, "as_node": "nobody"}]}], "as_node"),
            ([{"updates": [command]}], "command"),
        ]
        for bad, match in cases:
            with pytest.raises(UnprocessableEntityError, match=match):
                await client.threads.create(thread_id=bad_id, graph_id=GRAPH_ID, supersteps=bad)
            with pytest.raises(NotFoundError):
                await client.threads.get(bad_id)
        with pytest.raises(UnprocessableEntityError, match="graph_id"):
            await client.threads.create(supersteps=steps)

    asyncio.run(scenario())


@covers("threads.count")
def test_count_applies_the_filters_of_search_to_the_callers_threads(service: Service) -> None:
    async def scenario() -> None:
        alice, bob = service.client("alice"), service.client("bob")
        for _ in range(3):
            await alice.threads.create(metadata={"batch": "count-1"})
        await bob.threads.create(metadata={"batch": "count-1"})
        assert await alice.threads.count(metadata={"batch": "count-1"}) == 3
        assert await bob.threads.count(metadata={"batch": "count-1"}) == 1
        assert await alice.threads.count(metadata={"batch": "count-1"}, status="busy") == 0
        total = await alice.threads.count()
        assert total == len(await alice.threads.search(limit=1000))
        with pytest.raises(UnprocessableEntityError, match="values"):
            await alice.threads.count(values={"a": 1})

    asyncio.run(scenario())


@covers("threads.update_state", "threads.get_state")
def test_update_state_writes_a_checkpoint_as_the_node_and_forks_at_a_checkpoint(
    service: Service,
) -> None:
    async def scenario() -> None:
        client = service.client("alice")
        thread_id = await _thread_with_a_run(service)
        before = await client.threads.get_state(thread_id)
        assert _texts(before) == ["hello", "echo: hello"]
        answer: Any = await client.threads.update_state(
            thread_id, {"messages": [{"role": "ai", "content": "edited"}]}, as_node="respond"
        )
        written = answer["checkpoint"]
        assert written["thread_id"] == thread_id
        assert written["checkpoint_id"] != before["checkpoint"]["checkpoint_id"]
        after: Any = await client.threads.get_state(thread_id)
        assert after["checkpoint"]["checkpoint_id"] == written["checkpoint_id"]
        assert _texts(after) == ["hello", "echo: hello", "edited"]
        assert after["metadata"]["source"] == "update"
        assert after["parent_checkpoint"]["checkpoint_id"] == before["checkpoint"]["checkpoint_id"]
        # As if `respond` had written it: the graph goes on to what follows `respond` (END).
        assert after["next"] == []

        # Reading the earlier checkpoint: by id (GET) and by checkpoint (POST .../checkpoint).
        old_id = before["checkpoint"]["checkpoint_id"]
        by_id = await client.threads.get_state(thread_id, checkpoint_id=old_id)
        assert _texts(by_id) == ["hello", "echo: hello"]
        by_checkpoint = await client.threads.get_state(
            thread_id, checkpoint=_checkpoint({"checkpoint_id": old_id, "checkpoint_ns": ""})
        )
        assert by_checkpoint["checkpoint"]["checkpoint_id"] == old_id
        latest = await client.threads.get_state(
            thread_id, checkpoint=_checkpoint({"thread_id": thread_id})
        )
        assert latest["checkpoint"]["checkpoint_id"] == written["checkpoint_id"]

        # A fork: an update at the earlier checkpoint branches from it.
        forked: Any = await client.threads.update_state(
            thread_id, {"messages": [{"role": "ai", "content": "fork"}]}, checkpoint_id=old_id
        )
        state: Any = await client.threads.get_state(
            thread_id, checkpoint_id=forked["checkpoint"]["checkpoint_id"]
        )
        assert _texts(state) == ["hello", "echo: hello", "fork"]
        assert state["parent_checkpoint"]["checkpoint_id"] == old_id

        with pytest.raises(NotFoundError, match="checkpoint"):
            await client.threads.get_state(thread_id, checkpoint_id="1f0-not-a-checkpoint")
        with pytest.raises(NotFoundError, match="checkpoint"):
            await client.threads.update_state(thread_id, {}, checkpoint_id="1f0-nope")

    asyncio.run(scenario())


@covers("threads.update_state")
def test_update_state_refuses_careless_and_foreign_writes(service: Service) -> None:
    async def scenario() -> None:
        alice, bob = service.client("alice"), service.client("bob")
        thread_id = await _thread_with_a_run(service)
        before = await alice.threads.get_state(thread_id)
        with pytest.raises(NotFoundError):
            await bob.threads.update_state(thread_id, {"approved": True}, as_node="respond")
        with pytest.raises(NotFoundError):
            await bob.threads.get_state(
                thread_id, checkpoint_id=before["checkpoint"]["checkpoint_id"]
            )
        with pytest.raises(NotFoundError):
            await bob.threads.get_state(thread_id, checkpoint=_checkpoint({"checkpoint_id": None}))
        with pytest.raises(UnprocessableEntityError, match="as_node: no node named 'nobody'"):
            await alice.threads.update_state(thread_id, {"approved": 1}, as_node="nobody")
        with pytest.raises(UnprocessableEntityError, match=r"values\.messages"):
            await alice.threads.update_state(
                thread_id, {"messages": [{"bogus": 1}]}, as_node="respond"
            )
        with pytest.raises(UnprocessableEntityError, match="values: Expected dict"):
            await alice.threads.update_state(thread_id, [{"approved": 1}], as_node="respond")
        with pytest.raises(UnprocessableEntityError, match="Subgraph"):
            await alice.threads.update_state(
                thread_id, {"approved": 1}, checkpoint=_checkpoint({"checkpoint_ns": "child:1"})
            )
        with pytest.raises(UnprocessableEntityError, match="no channel"):
            await alice.threads.update_state(thread_id, {"not_a_channel": 1}, as_node="respond")
        empty = await alice.threads.create()
        with pytest.raises(ConflictError, match="no graph"):
            await alice.threads.update_state(empty["thread_id"], {"approved": 1})
        after = await alice.threads.get_state(thread_id)
        assert after["checkpoint"] == before["checkpoint"]

    asyncio.run(scenario())


def test_update_state_waits_for_no_run_it_refuses_while_one_holds_the_thread(
    service: Service,
) -> None:
    async def scenario() -> None:
        client = service.client("alice")
        thread_id = await _thread_with_a_run(service)
        running = asyncio.create_task(
            client.runs.wait(
                thread_id, GRAPH_ID, input=say("slow"), config={"configurable": {"delay": 2}}
            )
        )
        for _ in range(100):
            if (await client.threads.get(thread_id))["status"] == "busy":
                break
            await asyncio.sleep(0.05)
        with pytest.raises(ConflictError, match="run in progress"):
            await client.threads.update_state(thread_id, {"approved": 1}, as_node="respond")
        await running
        # Once the run is over the thread takes updates again.
        await client.threads.update_state(thread_id, {"approved": 1}, as_node="respond")
        state: Any = await client.threads.get_state(thread_id)
        assert state["values"]["approved"] == 1

    asyncio.run(scenario())


@covers("threads.copy")
def test_copy_is_a_new_thread_of_the_caller_with_the_whole_history(service: Service) -> None:
    async def scenario() -> None:
        alice, bob = service.client("alice"), service.client("bob")
        thread_id = await _thread_with_a_run(service, "original")
        await alice.threads.update(thread_id, metadata={"label": "src"})
        copy: Callable[[str], Awaitable[Any]] = alice.threads.copy
        copied = await copy(thread_id)
        assert copied is not None
        copy_id = copied["thread_id"]
        assert copy_id != thread_id
        assert copied["metadata"]["label"] == "src"
        source_history = await alice.threads.get_history(thread_id, limit=100)
        copy_history = await alice.threads.get_history(copy_id, limit=100)
        assert [s["checkpoint"]["checkpoint_id"] for s in copy_history] == [
            s["checkpoint"]["checkpoint_id"] for s in source_history
        ]
        assert all(s["checkpoint"]["thread_id"] == copy_id for s in copy_history)
        assert _texts(await alice.threads.get_state(copy_id)) == ["original", "echo: original"]

        # Copies diverge: a run on the copy leaves the source as it was; deleting the source
        # leaves the copy.
        await alice.runs.wait(copy_id, GRAPH_ID, input=say("more"))
        assert len(_texts(await alice.threads.get_state(copy_id))) == 4
        assert len(_texts(await alice.threads.get_state(thread_id))) == 2
        await alice.threads.delete(thread_id)
        assert len(_texts(await alice.threads.get_state(copy_id))) == 4

        # Ownership is not copied from a thread one cannot read: 404 as for a missing one.
        with pytest.raises(NotFoundError):
            await bob.threads.copy(copy_id)
        with pytest.raises(NotFoundError):
            await alice.threads.copy(thread_id)
        own = await bob.threads.create()
        bob_copy: Callable[[str], Awaitable[Any]] = bob.threads.copy
        bobs_copy = await bob_copy(own["thread_id"])
        assert bobs_copy is not None
        with pytest.raises(NotFoundError):
            await alice.threads.get(bobs_copy["thread_id"])

    asyncio.run(scenario())


@covers("threads.prune")
def test_prune_deletes_or_keeps_the_latest_of_the_callers_threads_only(
    service: Service,
) -> None:
    async def scenario() -> None:
        alice, bob = service.client("alice"), service.client("bob")
        gone = await _thread_with_a_run(service, "one")
        kept = await _thread_with_a_run(service, "two")
        await alice.runs.wait(kept, GRAPH_ID, input=say("three"))
        bobs = await bob.threads.create()
        result = await alice.threads.prune([gone, bobs["thread_id"], "no-such-thread"])
        assert result == {"pruned_count": 1}
        with pytest.raises(NotFoundError):
            await alice.threads.get(gone)
        assert (await bob.threads.get(bobs["thread_id"]))["thread_id"] == bobs["thread_id"]

        state = await alice.threads.get_state(kept)
        assert len(await alice.threads.get_history(kept, limit=100)) > 1
        result = await alice.threads.prune([kept], strategy="keep_latest")
        assert result == {"pruned_count": 1}
        history = await alice.threads.get_history(kept, limit=100)
        assert [s["checkpoint"]["checkpoint_id"] for s in history] == [
            state["checkpoint"]["checkpoint_id"]
        ]
        assert (await alice.threads.get_state(kept))["values"] == state["values"]
        # The thread still runs from its latest state.
        await alice.runs.wait(kept, GRAPH_ID, input=say("four"))
        assert _texts(await alice.threads.get_state(kept))[-1] == "echo: four"

    asyncio.run(scenario())


@covers("threads.get_state", "threads.get_history", "threads.search")
def test_select_returns_only_the_fields_asked_for(service: Service) -> None:
    async def scenario() -> None:
        client = service.client("alice")
        thread_id = await _thread_with_a_run(service, "picky")
        await client.threads.update(thread_id, metadata={"select": "me"})
        state: Any = await client.threads.get_state(thread_id, select=["values.messages"])
        assert list(state) == ["values"]
        assert list(state["values"]) == ["messages"]
        assert _texts(state) == ["picky", "echo: picky"]
        full: Any = await client.threads.get_state(thread_id)
        old = full["parent_checkpoint"]["checkpoint_id"]
        at: Any = await client.threads.get_state(
            thread_id, checkpoint=_checkpoint({"checkpoint_id": old}), select=["checkpoint", "next"]
        )
        assert at == {"checkpoint": {**full["parent_checkpoint"]}, "next": ["respond"]}
        by_id: Any = await client.threads.get_state(thread_id, checkpoint_id=old, select=["next"])
        assert by_id == {"next": ["respond"]}
        history: Any = await client.threads.get_history(thread_id, select=["checkpoint"])
        assert all(list(h) == ["checkpoint"] for h in history)
        found: Any = await client.threads.search(
            metadata={"select": "me"}, select=["thread_id", "status"]
        )
        assert found == [{"thread_id": thread_id, "status": "idle"}]
        with pytest.raises(UnprocessableEntityError, match="select"):
            await client.threads.get_state(thread_id, select=["password"])
        with pytest.raises(UnprocessableEntityError, match="select"):
            await client.threads.get_history(thread_id, select=["password"])

    asyncio.run(scenario())


def test_a_thread_past_its_ttl_is_deleted_by_retention(
    backed: tuple[Service, str], tmp_path: Path
) -> None:
    service, url = backed

    async def make() -> tuple[str, str, str]:
        client = service.client("alice")
        expiring = await _thread_with_a_run(service, "short-lived")
        await client.threads.update(expiring, metadata={}, ttl=1)
        fresh = await client.threads.create(ttl=1)
        forever = await _thread_with_a_run(service, "kept")
        return expiring, fresh["thread_id"], forever

    expiring, fresh, forever = asyncio.run(make())
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE agent_threads SET updated_at = now() - interval '5 minutes' "
            "WHERE thread_id = ANY(%s)",
            ([expiring, forever],),
        )
    settings = make_settings(tmp_path, database_url=url)
    dry = asyncio.run(apply_retention(settings, 30, dry_run=True))
    assert dry["threads_expired"] == 1
    report = asyncio.run(apply_retention(settings, 30, dry_run=False))
    assert report["threads_expired"] == 1

    async def check() -> None:
        client = service.client("alice")
        with pytest.raises(NotFoundError):
            await client.threads.get(expiring)
        assert (await client.threads.get(fresh))["thread_id"] == fresh
        assert _texts(await client.threads.get_state(forever)) == ["kept", "echo: kept"]

    asyncio.run(check())
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = %s", (expiring,)
        ).fetchone()
    assert row == (0,)


def test_remote_graph_reads_and_writes_state(service: Service) -> None:
    async def scenario() -> None:
        thread_id = await _thread_with_a_run(service, "remote")
        remote = RemoteGraph(GRAPH_ID, client=service.client("alice"))
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        snapshot = await remote.aget_state(config)
        assert [m["content"] for m in snapshot.values["messages"]] == ["remote", "echo: remote"]
        written = await remote.aupdate_state(config, {"approved": "yes"}, as_node="respond")
        assert written["configurable"]["thread_id"] == thread_id
        assert (
            written["configurable"]["checkpoint_id"]
            != snapshot.config["configurable"]["checkpoint_id"]
        )
        at = await remote.aget_state(snapshot.config)
        assert (
            at.config["configurable"]["checkpoint_id"]
            == snapshot.config["configurable"]["checkpoint_id"]
        )
        assert "approved" not in at.values
        latest = await remote.aget_state(config)
        assert latest.values["approved"] == "yes"
        history = [s async for s in remote.aget_state_history(config)]
        assert (
            history[0].config["configurable"]["checkpoint_id"]
            == written["configurable"]["checkpoint_id"]
        )
        assert history[0].metadata is not None
        assert history[0].metadata["source"] == "update"

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def approvals(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[Service]:
    with pg_redis_service(
        Path(tmp_path_factory.mktemp("approvals")),
        postgres_server,
        graph_source=registry_graph_source,
        principal_roles={"carol": ["approver"]},
    ) as (running, _url):
        yield running


def test_update_state_cannot_write_past_an_approval(approvals: Service) -> None:
    """A requester waiting for a refund's approval cannot approve it by writing the state as
    the approval node, nor by writing the tool call's result: such graphs refuse the call."""

    async def scenario() -> None:
        alice = approvals.client("alice")
        thread = await alice.threads.create()
        paused = await alice.runs.wait(
            thread["thread_id"], "main_agent", input=say("refund order Z-9 amount 12")
        )
        assert isinstance(paused, dict)
        assert paused["__interrupt__"]
        before: Any = await alice.threads.get_state(thread["thread_id"])
        waiting = list(before["next"])
        assert waiting
        for as_node in [*waiting, "tools", None]:
            with pytest.raises(PermissionDeniedError, match="approval steps"):
                await alice.threads.update_state(
                    thread["thread_id"], {"messages": []}, as_node=as_node
                )
        # Not even an approver writes state there: approving is a resume.
        with pytest.raises((PermissionDeniedError, NotFoundError)):
            await approvals.client("carol").threads.update_state(
                thread["thread_id"], {"messages": []}, as_node=waiting[0]
            )
        after = await alice.threads.get_state(thread["thread_id"])
        assert after["checkpoint"] == before["checkpoint"]
        assert (await alice.threads.get(thread["thread_id"]))["status"] == "interrupted"
        # The approver reads the waiting thread as it is (what RemoteGraph.get_state asks),
        # not its past checkpoints.
        carol = approvals.client("carol")
        now: Any = await carol.threads.get_state(
            thread["thread_id"], checkpoint=_checkpoint({"thread_id": thread["thread_id"]})
        )
        assert now["checkpoint"] == before["checkpoint"]
        with pytest.raises(NotFoundError):
            await carol.threads.get_state(
                thread["thread_id"], checkpoint_id=before["parent_checkpoint"]["checkpoint_id"]
            )
        # Nor can a new thread start past one: supersteps are refused on such graphs too.
        steps: Any = [{"updates": [{"values": {"messages": []}, "as_node": waiting[0]}]}]
        with pytest.raises(PermissionDeniedError, match="approval steps"):
            await alice.threads.create(graph_id="main_agent", supersteps=steps)

    asyncio.run(scenario())


def test_the_embedded_sqlite_backend_serves_the_same_thread_calls(sqlite_service: Service) -> None:
    async def scenario() -> None:
        client = sqlite_service.client("alice")
        thread_id = await _thread_with_a_run(sqlite_service, "lite")
        await client.runs.wait(thread_id, GRAPH_ID, input=say("again"))
        updated: Any = await client.threads.update(thread_id, metadata={"k": "v"}, ttl=5)
        assert (updated["metadata"]["k"], updated["ttl"]["ttl"]) == ("v", 5)
        assert await client.threads.count(metadata={"k": "v"}) == 1
        written: Any = await client.threads.update_state(
            thread_id, {"approved": "lite"}, as_node="respond"
        )
        copy: Callable[[str], Awaitable[Any]] = client.threads.copy
        copied = await copy(thread_id)
        history: Any = await client.threads.get_history(copied["thread_id"], limit=100)
        assert history[0]["checkpoint"]["checkpoint_id"] == written["checkpoint"]["checkpoint_id"]
        assert history[0]["values"]["approved"] == "lite"
        assert await client.threads.prune([copied["thread_id"]], strategy="keep_latest") == {
            "pruned_count": 1
        }
        kept = await client.threads.get_history(copied["thread_id"], limit=100)
        assert [s["checkpoint"]["checkpoint_id"] for s in kept] == [
            written["checkpoint"]["checkpoint_id"]
        ]
        assert _texts(kept[0]) == ["lite", "echo: lite", "again", "echo: again"]
        # The source keeps its whole history.
        assert len(await client.threads.get_history(thread_id, limit=100)) == len(history)

    asyncio.run(scenario())
