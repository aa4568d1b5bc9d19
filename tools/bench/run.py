"""The benchmark run: every server, every cell, repetitions; medians kept."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent_service.persistence.migrations import migrate_postgres

from tools.bench import background, checkpoints, loadgen
from tools.bench.one_node import ONE_NODE
from tools.bench.peer import ensure_peer_env, peer_command, peer_env, write_config
from tools.kit import launcher
from tools.kit.ports import free_port
from tools.kit.process import Started, started
from tools.kit.programs import REPO_ROOT
from tools.kit.servers import PostgresServer, RedisServer

API_KEY = "bench-key-0123456789abcdef"
PEER = "langgraph dev (inmem)"
# Same tuning for both servers: no per-user budget or rate limit gets in the way.
GRAPH_ENV = {"USER_MODEL_CALLS_PER_DAY": "100000000", "MODEL": "offline"}
# Both servers fork workers: the whole process group is stopped.
STOP: dict[str, Any] = {"stop_timeout": 30.0, "own_group": True}


@dataclass(frozen=True)
class Plan:
    concurrencies: tuple[int, ...] = (1, 8, 32)
    repetitions: int = 3
    warmup: float = 1.0
    duration: float = 3.0
    checkpoint_count: int = 200
    durability_concurrency: int = 8
    background_joins: int = 50
    background_burst: int = 100


QUICK = Plan(
    concurrencies=(1, 4),
    repetitions=1,
    warmup=0.2,
    duration=0.5,
    checkpoint_count=10,
    durability_concurrency=2,
    background_joins=5,
    background_burst=10,
)


def _ours_env(port: int, tmp: Path, **settings: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "PYTHONPATH": str(REPO_ROOT),
        "SECRETS_DIR": "/nonexistent",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": "1",
        "LOG_LEVEL": "WARNING",
        "API_KEYS": json.dumps({"bench": API_KEY}),
        "RATE_LIMIT_PER_MINUTE": "100000000",
        "SQLITE_PATH": str(tmp / "bench.sqlite"),
        **GRAPH_ENV,
        **settings,
    }


@contextmanager
def ours(name: str, tmp: Path, **settings: str) -> Iterator[Started]:
    port = free_port()
    command = launcher.command("tools.bench.graphs:bench_graph_source")
    env = _ours_env(port, tmp, **settings)
    url = f"http://127.0.0.1:{port}"
    with started(name, command, env, url=url, log=tmp / f"{port}.log", **STOP) as server:
        yield server


@contextmanager
def peer(tmp: Path) -> Iterator[Started]:
    langgraph = ensure_peer_env()
    config = write_config(tmp / "peer")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = peer_command(langgraph, config, port)
    with started(
        PEER,
        command,
        peer_env(GRAPH_ENV),
        url=url,
        log=tmp / "peer.log",
        cwd=tmp,
        ready_path="/ok",
        **STOP,
    ) as server:
        yield server


def _median(samples: list[loadgen.Sample]) -> dict[str, Any]:
    return {
        "rps": statistics.median(s.rps for s in samples),
        "p50_ms": statistics.median(s.percentile(50) for s in samples) * 1000,
        "p95_ms": statistics.median(s.percentile(95) for s in samples) * 1000,
        "p99_ms": statistics.median(s.percentile(99) for s in samples) * 1000,
        "errors": sum(s.errors for s in samples),
        "requests": sum(s.requests for s in samples),
        "client_cpu_share": statistics.median(s.client_cpu_share for s in samples),
        "repetitions": len(samples),
    }


def _measure(server: Started, cell: loadgen.Cell, plan: Plan) -> dict[str, Any]:
    headers = {"X-API-Key": API_KEY}
    samples = [
        asyncio.run(
            loadgen.measure(server.url, headers, cell, warmup=plan.warmup, duration=plan.duration)
        )
        for _ in range(plan.repetitions)
    ]
    return {"target": server.name, **asdict(cell), **_median(samples)}


def _target_rows(server: Started, plan: Plan) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    time.sleep(1.0)
    idle = server.rss_mb()
    rows = [
        _measure(server, loadgen.Cell(graph, mode, concurrency), plan)
        for graph in ("main_agent", ONE_NODE)
        for mode in ("stateless", "threaded")
        for concurrency in plan.concurrencies
    ]
    process = {
        "target": server.name,
        "ready_seconds": server.ready_seconds,
        "idle_rss_mb": idle,
        "rss_after_load_mb": server.rss_mb(),
    }
    return rows, process


def _background(server: Started, plan: Plan) -> dict[str, Any]:
    figures = asyncio.run(
        background.measure(
            server.url,
            {"X-API-Key": API_KEY},
            ONE_NODE,
            joins=plan.background_joins,
            burst=plan.background_burst,
        )
    )
    return {"target": server.name, **figures}


def run(plan: Plan, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    processes: list[dict[str, Any]] = []
    durability: list[dict[str, Any]] = []
    background_rows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        postgres = PostgresServer().init().start()
        stack.callback(postgres.destroy)
        redis = RedisServer().start()
        stack.callback(redis.destroy)

        def database() -> str:
            url = postgres.create_database(f"bench_{uuid.uuid4().hex[:8]}")
            asyncio.run(migrate_postgres(url))
            return url

        targets: list[Callable[[], AbstractContextManager[Started]]] = [
            lambda: peer(work),
            lambda: ours("this service, SQLite", work),
            lambda: ours("this service, PostgreSQL", work, DATABASE_URL=database()),
            lambda: ours(
                "this service, PostgreSQL + Redis",
                work,
                DATABASE_URL=database(),
                REDIS_URL=redis.url,
            ),
        ]
        for open_target in targets:
            with open_target() as server:
                print(
                    f"bench: {server.name} ready in {server.ready_seconds or 0:.2f} s", flush=True
                )
                target_rows, process = _target_rows(server, plan)
                rows += target_rows
                processes.append(process)
                background_rows.append(_background(server, plan))
                if server.name in (PEER, "this service, PostgreSQL"):
                    for mode in ("sync", "async", "exit"):
                        cell = loadgen.Cell(
                            "main_agent", "threaded", plan.durability_concurrency, mode
                        )
                        durability.append(_measure(server, cell, plan))
        saver = asyncio.run(checkpoints.measure(database(), plan.checkpoint_count))
    return {
        "plan": asdict(plan),
        "throughput": rows,
        "durability": durability,
        "background": background_rows,
        "processes": processes,
        "checkpoints": saver,
    }
