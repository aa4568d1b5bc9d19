"""The one load generator: closed-loop asyncio workers over the caller's keep-alive client,
each sending its next run when the last one answered. A worker runs on threads of its own (a
thread runs one run at a time) or stateless (`/runs/wait`); every answer is handed to
`record`. `make bench` measures with it in a time window, the reliability drills count runs
and check that every acknowledged one survived."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Answer:
    """One run request: who sent it, on which thread (None: stateless), with what message;
    its HTTP status (0: no answer), when it started (monotonic) and how long it took."""

    worker: int
    thread_id: str | None
    text: str
    status: int
    started: float
    seconds: float


def say(text: str) -> Any:
    """A run input with one user message (typed loosely: the SDK's input type is narrower)."""
    return {"messages": [{"role": "user", "content": text}]}


async def create_threads(client: httpx.AsyncClient, count: int) -> list[str]:
    threads = []
    for _ in range(count):
        answer = await client.post("/threads", json={})
        answer.raise_for_status()
        threads.append(str(answer.json()["thread_id"]))
    return threads


async def closed_loop(
    client: httpx.AsyncClient,
    *,
    graph: str,
    concurrency: int,
    threads_per_worker: int,
    keep_going: Callable[[], bool],
    record: Callable[[Answer], None],
    extra: dict[str, Any] | None = None,
    request_timeout: float | None = None,
) -> None:
    """Run until `keep_going()` is false (asked before each request). `threads_per_worker` 0
    sends stateless runs; otherwise each worker cycles through threads it creates first."""
    timeout: Any = request_timeout if request_timeout is not None else httpx.USE_CLIENT_DEFAULT

    async def worker(index: int) -> None:
        threads = await create_threads(client, threads_per_worker)
        turn = 0
        while keep_going():
            thread_id = threads[turn % len(threads)] if threads else None
            path = f"/threads/{thread_id}/runs/wait" if thread_id else "/runs/wait"
            text = f"run {turn} from worker {index}"
            turn += 1
            started = time.monotonic()
            try:
                response = await client.post(
                    path,
                    json={"assistant_id": graph, "input": say(text), **(extra or {})},
                    timeout=timeout,
                )
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            record(Answer(index, thread_id, text, status, started, time.monotonic() - started))

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
