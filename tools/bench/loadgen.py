"""The benchmark's measurement: the kit's closed-loop generator over keep-alive connections, a
warm-up that is not measured, then a fixed measuring window. Its own CPU time is reported, so a
reader can see it was not the bottleneck."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from tools.kit.load import Answer, closed_loop
from tools.kit.process import machine_busy_share


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
    # The server's CPU seconds in the window (its process tree, from /proc), when probed.
    server_cpu_seconds: float | None = None
    # Every process's CPU seconds in the window (server, PostgreSQL, Redis, this generator).
    machine_cpu_seconds: float | None = None
    # The window as the CPU readings saw it: until the last request sent in it was answered.
    cpu_window_seconds: float = 0.0

    @property
    def server_cpu_ms_per_request(self) -> float | None:
        if self.server_cpu_seconds is None or not self.requests:
            return None
        return self.server_cpu_seconds / self.requests * 1000

    @property
    def machine_cpu_ms_per_request(self) -> float | None:
        if self.machine_cpu_seconds is None or not self.requests:
            return None
        return self.machine_cpu_seconds / self.requests * 1000

    @property
    def machine_busy(self) -> float | None:
        if self.machine_cpu_seconds is None:
            return None
        return machine_busy_share(self.machine_cpu_seconds, self.cpu_window_seconds)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1]


async def measure(
    url: str,
    headers: dict[str, str],
    cell: Cell,
    *,
    warmup: float,
    duration: float,
    server_cpu: Callable[[], float] | None = None,
    machine_cpu: Callable[[], float] | None = None,
) -> Sample:
    """`cell.concurrency` clients for `warmup` seconds unmeasured, then `duration` measured;
    `server_cpu` and `machine_cpu` (CPU seconds so far) are read at both ends of the window."""
    limits = httpx.Limits(max_connections=cell.concurrency + 4)
    latencies: list[float] = []
    errors = 0
    deadline: float | None = None

    def keep_going() -> bool:
        return deadline is None or time.monotonic() < deadline

    def record(answer: Answer) -> None:
        nonlocal errors
        # Answered inside the window and sent before its end (a run sent during the warm-up
        # and answered in the window counts: the server was busy with it in the window).
        if deadline is not None and answer.started < deadline:
            latencies.append(answer.seconds)
            errors += 0 if answer.status == 200 else 1

    extra = {"durability": cell.durability} if cell.durability else None
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=120) as http:
        load = asyncio.create_task(
            closed_loop(
                http,
                graph=cell.graph,
                concurrency=cell.concurrency,
                threads_per_worker=1 if cell.mode == "threaded" else 0,
                keep_going=keep_going,
                record=record,
                extra=extra,
            )
        )
        await asyncio.sleep(warmup)
        cpu_start, wall_start = time.process_time(), time.monotonic()
        server_start = server_cpu() if server_cpu else None
        machine_start = machine_cpu() if machine_cpu else None
        deadline = wall_start + duration
        # Requests sent before the deadline still count: the window's end is when they are
        # all answered, so the server's CPU is read then too.
        await load
        server_seconds = (
            server_cpu() - server_start if server_cpu and server_start is not None else None
        )
        machine_seconds = (
            machine_cpu() - machine_start if machine_cpu and machine_start is not None else None
        )
        wall = time.monotonic() - wall_start
        cpu = time.process_time() - cpu_start
    return Sample(
        requests=len(latencies),
        errors=errors,
        seconds=min(wall, duration) if wall else duration,
        latencies=latencies,
        client_cpu_share=cpu / wall if wall else 0.0,
        server_cpu_seconds=server_seconds,
        machine_cpu_seconds=machine_seconds,
        cpu_window_seconds=wall,
    )
