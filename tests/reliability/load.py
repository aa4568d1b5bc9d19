"""The drills' load: a fixed number of runs through the kit's closed-loop generator, every
answer kept in `Figures`, every acknowledged run remembered so the drill can check it survived."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.reliability.figures import Figures
from tools.kit.load import Answer, closed_loop


@dataclass
class Acknowledged:
    """Runs the service answered 200 for, by thread: what must survive anything."""

    by_thread: dict[str, list[str]] = field(default_factory=dict)


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
    remaining = iter(range(runs))

    def keep_going() -> bool:
        return not stop() and next(remaining, None) is not None

    def record(answer: Answer) -> None:
        figures.add(answer.status, answer.seconds, answer.started)
        if answer.status == 200 and answer.thread_id is not None:
            acknowledged.by_thread.setdefault(answer.thread_id, []).append(answer.text)

    await closed_loop(
        client,
        graph=graph,
        concurrency=concurrency,
        threads_per_worker=threads_per_worker,
        keep_going=keep_going,
        record=record,
        extra=extra,
        request_timeout=request_timeout,
    )


async def missing_runs(client: httpx.AsyncClient, acknowledged: Acknowledged) -> list[str]:
    """Acknowledged runs whose message is not in their thread's state."""
    missing: list[str] = []
    for thread_id, texts in acknowledged.by_thread.items():
        state = (await client.get(f"/threads/{thread_id}/state")).json()
        seen = {m["content"] for m in state["values"]["messages"] if m["type"] == "human"}
        missing += [f"{thread_id}: {text}" for text in texts if text not in seen]
    return missing
