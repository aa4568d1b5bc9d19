"""The drill's data set, written and read only through the service's API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from agent_service.core.principal import USAGE_NAMESPACE
from langgraph_sdk import get_client

from tools.kit.load import say

GRAPH = "main_agent"
THREADS_PER_USER = 2
# main_agent saves "remember that ..." as a memory in the user's store namespace; every run
# adds several checkpoints to the thread.
TURNS = ("remember that {user} drilled thread {n}", "hello", "what do you remember")
HISTORY_LIMIT = 1000


@dataclass
class Snapshot:
    """Everything the API says about the data set: per thread its record, state and full
    history; per user the store items (from the user's export)."""

    threads: dict[str, dict[str, Any]] = field(default_factory=dict)
    store: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def checkpoints(self) -> int:
        return sum(len(thread["history"]) for thread in self.threads.values())

    @property
    def store_items(self) -> int:
        return sum(len(items) for items in self.store.values())


async def write_dataset(agent_url: str, api_keys: Mapping[str, str]) -> dict[str, list[str]]:
    """Per user, THREADS_PER_USER threads with one run per turn; returns user -> thread ids."""
    threads: dict[str, list[str]] = {}
    for user, key in sorted(api_keys.items()):
        client = get_client(url=agent_url, api_key=key)
        threads[user] = []
        for n in range(THREADS_PER_USER):
            thread = await client.threads.create(metadata={"drill": True, "n": n})
            for turn in TURNS:
                await client.runs.wait(
                    thread["thread_id"], GRAPH, input=say(turn.format(user=user, n=n))
                )
            threads[user].append(thread["thread_id"])
    return threads


async def snapshot(
    agent_url: str, api_keys: Mapping[str, str], threads: Mapping[str, list[str]]
) -> Snapshot:
    taken = Snapshot()
    async with httpx.AsyncClient(base_url=agent_url, timeout=60) as http:
        for user, thread_ids in threads.items():
            key = api_keys[user]
            client = get_client(url=agent_url, api_key=key)
            for thread_id in thread_ids:
                taken.threads[thread_id] = {
                    "thread": await client.threads.get(thread_id),
                    "state": await client.threads.get_state(thread_id),
                    "history": await client.threads.get_history(thread_id, limit=HISTORY_LIMIT),
                }
            # A user's export lists every item they own, in every namespace (the Store API shows
            # only the user's own space).
            exported = await http.get(f"/users/{user}/export", headers={"X-API-Key": key})
            exported.raise_for_status()
            # The daily model-call count is accounting, batched: each process writes it up to
            # guardrails.user_limit.SYNC_SECONDS after the calls, so a snapshot taken right after
            # the runs may precede the last write. What the user owns is compared.
            taken.store[user] = sorted(
                (
                    item
                    for item in exported.json()["store"]
                    if item["namespace"][:1] != [USAGE_NAMESPACE]
                ),
                key=lambda item: (item["namespace"], item["key"]),
            )
    return taken


def differences(expected: Snapshot, actual: Snapshot) -> list[str]:
    """Every way `actual` differs from `expected`, one line each."""
    found: list[str] = []
    for thread_id, wanted in expected.threads.items():
        got = actual.threads.get(thread_id)
        if got is None:
            found.append(f"thread {thread_id}: missing")
            continue
        for part in ("thread", "state", "history"):
            if got[part] != wanted[part]:
                found.append(f"thread {thread_id}: {part} differs")
    for user, items in expected.store.items():
        if actual.store.get(user) != items:
            found.append(f"store items of {user}: differ")
    return found
