"""The physical limit on this machine: the registry's graphs run in this process with no server
at all, `ainvoke` by concurrent asyncio clients in a closed loop, on the offline model, with an
in-memory saver/store/cache or with the service's durable PostgreSQL saver and store. A
service row divided by the in-memory row of the same graph, mode and concurrency is the share
of the limit the service reaches."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from agent_service.graphs.build import build_graphs
from agent_service.graphs.source import registry_graph_source
from agent_service.persistence.pool import CONNECTION_KWARGS
from agent_service.persistence.saver import PooledPostgresSaver
from agent_service.settings import GraphOptions, Settings
from langgraph.cache.memory import InMemoryCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from langgraph.store.postgres.aio import AsyncPostgresStore
from psycopg_pool import AsyncConnectionPool

from tools.bench.one_node import ONE_NODE, build_one_node
from tools.kit.load import say
from tools.kit.process import machine_busy_share, machine_cpu_seconds

Graphs = Mapping[str, Pregel[Any, Any, Any, Any]]
SAVERS = ("in-memory", "PostgreSQL")
# Like the service's bench settings: no per-user budget gets in the way.
OPTIONS = GraphOptions(model="offline", user_model_calls_per_day=100_000_000)
USER = "bench"


def _graphs(checkpointer: BaseCheckpointSaver[Any], store: BaseStore) -> Graphs:
    model = registry_graph_source(Settings(model="offline")).model
    graphs = dict(
        build_graphs(
            checkpointer=checkpointer,
            store=store,
            cache=InMemoryCache(),
            model=model,
            options=OPTIONS,
        )
    )
    graphs[ONE_NODE] = build_one_node(checkpointer)
    return graphs


@asynccontextmanager
async def open_graphs(saver: str, database_url: str | None) -> AsyncIterator[Graphs]:
    """The graphs on `saver`: "in-memory", or "PostgreSQL" (the service's saver and store on
    one pool, as the service opens them, without the owner guard: no service tables here)."""
    if saver == "in-memory":
        yield _graphs(InMemorySaver(), InMemoryStore())
        return
    assert database_url is not None
    kwargs = {k: v for k, v in CONNECTION_KWARGS.items() if not k.startswith("keepalives")}
    async with AsyncConnectionPool(
        database_url, min_size=4, max_size=20, kwargs=kwargs, open=False
    ) as pool:
        await pool.wait()
        yield _graphs(PooledPostgresSaver(pool), AsyncPostgresStore(pool))  # type: ignore[arg-type]


def turn_input(text: str) -> Any:
    return say(text)


def config_for(thread_id: str) -> Any:
    return {"configurable": {"thread_id": thread_id, "user_id": USER}}


async def closed_loop(
    graph: Pregel[Any, Any, Any, Any],
    *,
    concurrency: int,
    threaded: bool,
    warmup: float,
    duration: float,
) -> dict[str, Any]:
    """`concurrency` clients invoking `graph` back to back: `warmup` seconds unmeasured, then
    `duration` measured; runs/s and this process's CPU seconds per run in the window."""
    completed = 0
    errors = 0
    measuring = False
    deadline = float("inf")

    async def client(index: int) -> None:
        nonlocal completed, errors
        thread = f"bench-{uuid.uuid4().hex[:12]}"
        turn = 0
        while time.monotonic() < deadline:
            thread_id = thread if threaded else f"bench-{uuid.uuid4().hex}"
            turn += 1
            try:
                await graph.ainvoke(
                    turn_input(f"run {turn} from client {index}"), config_for(thread_id)
                )
            except Exception:
                errors += measuring
                continue
            completed += measuring

    tasks = [asyncio.create_task(client(i)) for i in range(concurrency)]
    await asyncio.sleep(warmup)
    measuring = True
    cpu, wall, machine = time.process_time(), time.monotonic(), machine_cpu_seconds()
    deadline = wall + duration
    await asyncio.gather(*tasks)
    wall = time.monotonic() - wall
    cpu = time.process_time() - cpu
    # With the durable saver this includes PostgreSQL's share of the work.
    machine = machine_cpu_seconds() - machine
    return {
        "rps": completed / wall if wall else 0.0,
        "cpu_ms_per_run": cpu / completed * 1000 if completed else None,
        "machine_cpu_ms": machine / completed * 1000 if completed else None,
        "machine_busy": machine_busy_share(machine, wall),
        "errors": errors,
        "requests": completed,
    }


async def measure(
    saver: str,
    database_url: str | None,
    graphs: tuple[str, ...],
    concurrencies: tuple[int, ...],
    *,
    warmup: float,
    duration: float,
    repetitions: int,
) -> list[dict[str, Any]]:
    rows = []
    async with open_graphs(saver, database_url) as compiled:
        for graph_id in graphs:
            for mode in ("stateless", "threaded"):
                for concurrency in concurrencies:
                    samples = [
                        await closed_loop(
                            compiled[graph_id],
                            concurrency=concurrency,
                            threaded=mode == "threaded",
                            warmup=warmup,
                            duration=duration,
                        )
                        for _ in range(repetitions)
                    ]
                    samples.sort(key=lambda s: s["rps"])
                    median = samples[len(samples) // 2]
                    rows.append(
                        {
                            "target": f"in-process, {saver}",
                            "saver": saver,
                            "graph": graph_id,
                            "mode": mode,
                            "concurrency": concurrency,
                            **median,
                            "errors": sum(s["errors"] for s in samples),
                        }
                    )
    return rows
