"""A thread belongs to the principal that created it: to anyone else it does not exist."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError

from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.service import Service

pytestmark = pytest.mark.integration


def test_other_principal_gets_404_and_never_sees_the_thread(pg_service: Service) -> None:
    async def scenario() -> None:
        alice, bob = pg_service.client("alice"), pg_service.client("bob")
        thread = await alice.threads.create(metadata={"owner_hint": "alice"})
        tid = thread["thread_id"]
        await alice.runs.wait(tid, GRAPH_ID, input=say("secret"))
        bob_thread = await bob.threads.create()

        for call in (
            bob.threads.get(tid),
            bob.threads.get_state(tid),
            bob.threads.get_history(tid),
            bob.threads.delete(tid),
        ):
            with pytest.raises(NotFoundError, match=f"thread '{tid}' not found"):
                await call
        with pytest.raises(httpx.HTTPStatusError) as run_attempt:
            await bob.runs.wait(tid, GRAPH_ID, input={"messages": []})
        assert run_attempt.value.response.status_code == 404
        with pytest.raises(NotFoundError):
            async for _ in bob.runs.stream(tid, GRAPH_ID, input={"messages": []}):
                pass
        # Claiming the id with if_not_exists=create must not take the thread over either: the
        # id cannot be used (409), which says nothing of the thread behind it.
        with pytest.raises(httpx.HTTPStatusError) as takeover:
            await bob.runs.wait(tid, GRAPH_ID, input={"messages": []}, if_not_exists="create")
        assert takeover.value.response.status_code == 409
        assert takeover.value.response.json()["error"] == "thread_id_unavailable"

        assert [t["thread_id"] for t in await bob.threads.search()] == [bob_thread["thread_id"]]
        assert await bob.threads.search(ids=[tid]) == []
        assert await bob.threads.search(metadata={"owner_hint": "alice"}) == []
        # Alice still has it, untouched.
        state = await alice.threads.get_state(tid)
        values: Any = state["values"]
        assert values["messages"][0]["content"] == "secret"

    asyncio.run(scenario())


def test_a_client_cannot_pick_another_user_id_or_thread_in_config(pg_service: Service) -> None:
    async def scenario() -> None:
        alice, bob = pg_service.client("alice"), pg_service.client("bob")
        alice_thread = await alice.threads.create()
        bob_thread = await bob.threads.create()
        await bob.runs.wait(
            bob_thread["thread_id"],
            GRAPH_ID,
            input=say("bob writes"),
            config={"configurable": {"user_id": "alice", "thread_id": alice_thread["thread_id"]}},
        )
        # The run ran as bob, on bob's thread: alice's memory and thread are untouched.
        alice_data = await alice.http.get("/users/alice/export")
        assert alice_data["store"] == []
        bob_data = await bob.http.get("/users/bob/export")
        assert [item["namespace"] for item in bob_data["store"]] == [["memories", "bob"]]
        alice_state = await alice.threads.get_state(alice_thread["thread_id"])
        assert alice_state["values"] == {}

    asyncio.run(scenario())
