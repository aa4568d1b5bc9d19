"""The load generator: closed-loop asyncio workers over keep-alive connections, a warm-up that
is not measured, then a fixed measuring window. Its own CPU time is reported, so a reader can
see it was not the bottleneck."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Cell:
    """One measurement: which graph, stateless or threaded, how many clients."""

    graph: str
    mode: str  # "stateless" | "threaded"
    concurrency: int
    durability: str | None = None


@dataclass
class Sample:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    client_cpu_share: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1]


def _body(cell: Cell, text: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "assistant_id": cell.graph,
        "input": {"messages": [{"role": "user", "content": text}]},
    }
    if cell.durability:
        body["durability"] = cell.durability
    return body


async def measure(
    url: str, headers: dict[str, str], cell: Cell, *, warmup: float, duration: float
) -> Sample:
    limits = httpx.Limits(max_connections=cell.concurrency + 4)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=120) as http:
        threads: list[str] = []
        if cell.mode == "threaded":
            for _ in range(cell.concurrency):
                answer = await http.post("/threads", json={})
                answer.raise_for_status()
                threads.append(answer.json()["thread_id"])
        latencies: list[float] = []
        errors = 0
        measuring = False
        deadline = 0.0

        async def worker(index: int) -> None:
            nonlocal errors
            path = f"/threads/{threads[index]}/runs/wait" if threads else "/runs/wait"
            n = 0
            while True:
                now = time.monotonic()
                if measuring and now >= deadline:
                    return
                n += 1
                started = time.monotonic()
                try:
                    answer = await http.post(path, json=_body(cell, f"turn {n}"))
                    ok = answer.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if measuring and started < deadline:
                    latencies.append(time.monotonic() - started)
                    errors += 0 if ok else 1

        tasks = [asyncio.create_task(worker(i)) for i in range(cell.concurrency)]
        await asyncio.sleep(warmup)
        cpu_start, wall_start = time.process_time(), time.monotonic()
        measuring, deadline = True, wall_start + duration
        await asyncio.gather(*tasks)
        wall = time.monotonic() - wall_start
        cpu = time.process_time() - cpu_start
    return Sample(
        requests=len(latencies),
        errors=errors,
        seconds=min(wall, duration) if wall else duration,
        latencies=latencies,
        client_cpu_share=cpu / wall if wall else 0.0,
    )
