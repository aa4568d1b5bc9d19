"""A closed-loop load generator: `concurrency` workers, each running its own threads one run
at a time (a thread runs one run at a time), every answer timed and kept."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.reliability.figures import Figures


@dataclass
class Acknowledged:
    """Runs the service answered 200 for, by thread: what must survive anything."""

    by_thread: dict[str, list[str]] = field(default_factory=dict)


def say(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def create_threads(client: httpx.AsyncClient, count: int) -> list[str]:
    threads = []
    for _ in range(count):
        answer = await client.post("/threads", json={})
        answer.raise_for_status()
        threads.append(str(answer.json()["thread_id"]))
    return threads


async def run_load(
    client: httpx.AsyncClient,
    *,
    graph: str,
    runs: int,
    concurrency: int,
    threads_per_worker: int,
    figures: Figures,
    acknowledged: Acknowledged,
    stop: Callable[[], bool] = lambda: False,
    extra: dict[str, Any] | None = None,
    request_timeout: float = 60.0,
) -> None:
    counter = iter(range(runs))

    async def worker(index: int) -> None:
        threads = await create_threads(client, threads_per_worker)
        for turn, number in enumerate(counter):
            if stop():
                return
            thread_id = threads[turn % len(threads)]
            text = f"run {number} from worker {index}"
            started = time.monotonic()
            try:
                answer = await client.post(
                    f"/threads/{thread_id}/runs/wait",
                    json={"assistant_id": graph, "input": say(text), **(extra or {})},
                    timeout=request_timeout,
                )
                status = answer.status_code
            except httpx.HTTPError:
                status = 0
            figures.add(status, time.monotonic() - started, started)
            if status == 200:
                acknowledged.by_thread.setdefault(thread_id, []).append(text)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))


async def missing_runs(client: httpx.AsyncClient, acknowledged: Acknowledged) -> list[str]:
    """Acknowledged runs whose message is not in their thread's state."""
    missing: list[str] = []
    for thread_id, texts in acknowledged.by_thread.items():
        state = (await client.get(f"/threads/{thread_id}/state")).json()
        seen = {m["content"] for m in state["values"]["messages"] if m["type"] == "human"}
        missing += [f"{thread_id}: {text}" for text in texts if text not in seen]
    return missing
