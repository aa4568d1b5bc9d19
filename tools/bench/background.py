"""Background runs beside the inline ones: runs.create then runs.join, on each server.

- join latency: one client, sequential, on one thread: `POST /threads/{id}/runs` and at once
  `GET .../join`; the time from sending the create to the join's answer (what `runs.wait`
  measures for an inline run: the same work plus the queue's hand-off to a worker).
- throughput: a burst of `burst` runs, each on a thread of its own, created as fast as the
  server accepts them, then joined; runs per second from the first create to the last join.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx

from tools.kit.load import say


async def _thread(http: httpx.AsyncClient) -> str:
    response = await http.post("/threads", json={})
    response.raise_for_status()
    return str(response.json()["thread_id"])


async def _create(http: httpx.AsyncClient, thread_id: str, graph: str, text: str) -> str:
    response = await http.post(
        f"/threads/{thread_id}/runs", json={"assistant_id": graph, "input": say(text)}
    )
    response.raise_for_status()
    return str(response.json()["run_id"])


async def _join(http: httpx.AsyncClient, thread_id: str, run_id: str) -> bool:
    response = await http.get(f"/threads/{thread_id}/runs/{run_id}/join")
    return response.status_code == 200 and "__error__" not in (response.json() or {})


async def measure(
    url: str, headers: dict[str, str], graph: str, *, joins: int, burst: int
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=120) as http:
        thread = await _thread(http)
        latencies: list[float] = []
        errors = 0
        for turn in range(joins + 2):
            started = time.perf_counter()
            run_id = await _create(http, thread, graph, f"join {turn}")
            ok = await _join(http, thread, run_id)
            if turn >= 2:  # two unmeasured: connections and caches warm
                latencies.append(time.perf_counter() - started)
                errors += 0 if ok else 1
        threads = await asyncio.gather(*(_thread(http) for _ in range(burst)))
        started = time.perf_counter()
        runs = await asyncio.gather(
            *(_create(http, tid, graph, f"burst {i}") for i, tid in enumerate(threads))
        )
        accepted = time.perf_counter() - started
        joined = await asyncio.gather(
            *(_join(http, tid, rid) for tid, rid in zip(threads, runs, strict=True))
        )
        seconds = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "graph": graph,
        "join_p50_ms": statistics.median(ordered) * 1000,
        "join_p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000,
        "joins": len(latencies),
        "burst": burst,
        "create_per_s": burst / accepted if accepted else 0.0,
        "runs_per_s": burst / seconds if seconds else 0.0,
        "errors": errors + sum(not ok for ok in joined),
    }


def markdown(rows: list[dict[str, Any]]) -> list[str]:
    return [
        "",
        "## Background runs (runs.create + runs.join)",
        "",
        "Join latency: one client creating a run and joining it at once, one after the other",
        "(compare with the inline rows at 1 client). Burst: runs created at once, each on its own",
        "thread, then joined; runs/s from the first create to the last join.",
        "",
        "| server | graph | join p50 ms | join p99 ms | burst | creates/s | runs/s | errors |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['target']} | {r['graph']} | {r['join_p50_ms']:.1f} | {r['join_p99_ms']:.1f} "
            f"| {r['burst']} | {r['create_per_s']:.0f} | {r['runs_per_s']:.1f} | {r['errors']} |"
            for r in rows
        ),
    ]
