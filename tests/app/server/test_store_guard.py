"""A run's store writes stop with its thread (persistence.store_guard): refused when the
thread is gone before the write, taken back when it went during the write; writes outside a
run (the Store API) are not checked."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, TypedDict

import pytest
from agent_service.persistence.backends import open_persistence
from agent_service.persistence.guard import ThreadGone
from agent_service.persistence.migrations import migrate_sqlite
from agent_service.persistence.store_guard import StoreOwnerGuard
from agent_service.settings import Settings
from langgraph.config import get_store
from langgraph.graph import StateGraph
from langgraph.store.base import BaseStore

NAMESPACE = ("users", "alice", "memories")


class State(TypedDict):
    n: int


async def _remember(state: State) -> dict[str, Any]:
    await get_store().aput(NAMESPACE, "k", {"text": "my secret"})
    return {"n": 1}


def _graph(store: BaseStore) -> Any:
    builder = StateGraph(State)
    builder.add_node("remember", _remember)
    builder.set_entry_point("remember")
    builder.set_finish_point("remember")
    return builder.compile(store=store)


CONFIG: Any = {"configurable": {"thread_id": "t1", "user_id": "alice"}}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(sqlite_path=tmp_path / "guard.sqlite", store_embeddings="none")


def _scenario(settings: Settings, owners: list[str | None]) -> tuple[bool, Any]:
    """Run the graph with the thread's owner answering `owners` in turn; returns whether the
    run raised ThreadGone and what the store holds."""

    async def run() -> tuple[bool, Any]:
        async with open_persistence(settings) as persistence:
            await migrate_sqlite(persistence)
            store = persistence.store
            assert isinstance(store, StoreOwnerGuard)
            answers = iter(owners)

            async def owner_of(_thread_id: str) -> str | None:
                return next(answers)

            store.owner_of = owner_of
            gone = False
            try:
                await _graph(store).ainvoke({"n": 0}, CONFIG)
            except ThreadGone:
                gone = True
            return gone, await store.aget(NAMESPACE, "k")

    return asyncio.run(run())


def test_a_run_writes_while_its_thread_is_its_users(settings: Settings) -> None:
    gone, item = _scenario(settings, ["alice", "alice"])
    assert not gone
    assert item is not None
    assert item.value == {"text": "my secret"}


def test_a_run_whose_thread_is_gone_writes_nothing(settings: Settings) -> None:
    gone, item = _scenario(settings, [None])
    assert gone
    assert item is None


def test_a_write_the_delete_overtook_is_taken_back(settings: Settings) -> None:
    gone, item = _scenario(settings, ["alice", None])
    assert gone
    assert item is None


def test_writes_outside_a_run_are_not_checked(settings: Settings) -> None:
    async def run() -> Any:
        async with open_persistence(settings) as persistence:
            await migrate_sqlite(persistence)
            store = persistence.store
            assert isinstance(store, StoreOwnerGuard)

            async def no_owner(_thread_id: str) -> str | None:
                raise AssertionError("looked up outside a run")

            store.owner_of = no_owner
            await store.aput(NAMESPACE, "k", {"text": "from the API"})
            return await store.aget(NAMESPACE, "k")

    item = asyncio.run(run())
    assert item is not None
    assert item.value == {"text": "from the API"}
