"""The benchmark run: every server, every cell, repetitions; medians kept."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent_service.persistence.migrations import migrate_postgres

from tools.bench import background, checkpoints, dbwork, http_path, inprocess, loadgen
from tools.bench.one_node import ONE_NODE
from tools.bench.peer import ensure_peer_env, peer_command, peer_env, write_config
from tools.bench.report import DURABLE, PEER, REDIS, TWO_WORKERS
from tools.kit import launcher
from tools.kit.ports import free_port
from tools.kit.process import Started, machine_cpu_seconds, started, tree_cpu_seconds
from tools.kit.programs import REPO_ROOT
from tools.kit.servers import PostgresServer, RedisServer

API_KEY = "bench-key-0123456789abcdef"
GRAPHS = ("main_agent", ONE_NODE)
# pg_stat_statements needs its library loaded at server start.
PG_SETTINGS = {"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.max": "1000"}
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
    # Sequential turns on one thread counted in pg_stat_database (each reading waits ~11 s);
    # enough that the pool's one-off liveness tests after the wait (at most its 10
    # connections) add at most 0.02 per turn.
    db_turns: int = 500
    # py-spy records the durable service under the top concurrency this long.
    profile_seconds: float = 10.0
    # Requests per HTTP-path layer measurement (in-process, no socket).
    http_path_requests: int = 3000


QUICK = Plan(
    concurrencies=(1, 4),
    repetitions=1,
    warmup=0.2,
    duration=0.5,
    checkpoint_count=10,
    durability_concurrency=2,
    background_joins=5,
    background_burst=10,
    db_turns=3,
    profile_seconds=1.0,
    http_path_requests=100,
)


def _ours_env(port: int, tmp: Path, **settings: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        # This tree's service code, whatever the virtualenv's editable install points at.
        "PYTHONPATH": f"{REPO_ROOT / 'app'}:{REPO_ROOT}",
        "SECRETS_DIR": "/nonexistent",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": "1",
        "LOG_LEVEL": "WARNING",
        "API_KEYS": json.dumps({"bench": API_KEY}),
        "RATE_LIMIT_PER_MINUTE": "100000000",
        "SQLITE_PATH": str(tmp / f"bench-{port}.sqlite"),
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
        # The repetitions' own spread: a gap between two rows inside it is noise.
        "rps_min": min(s.rps for s in samples),
        "rps_max": max(s.rps for s in samples),
        "p50_ms": statistics.median(s.percentile(50) for s in samples) * 1000,
        "p95_ms": statistics.median(s.percentile(95) for s in samples) * 1000,
        "p99_ms": statistics.median(s.percentile(99) for s in samples) * 1000,
        "errors": sum(s.errors for s in samples),
        "requests": sum(s.requests for s in samples),
        "client_cpu_share": statistics.median(s.client_cpu_share for s in samples),
        "server_cpu_ms": _median_or_none([s.server_cpu_ms_per_request for s in samples]),
        "machine_cpu_ms": _median_or_none([s.machine_cpu_ms_per_request for s in samples]),
        "machine_busy": _median_or_none([s.machine_busy for s in samples]),
        "repetitions": len(samples),
    }


def _median_or_none(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _sample(server: Started, cell: loadgen.Cell, plan: Plan) -> loadgen.Sample:
    pid = server.process.pid
    return asyncio.run(
        loadgen.measure(
            server.url,
            {"X-API-Key": API_KEY},
            cell,
            warmup=plan.warmup,
            duration=plan.duration,
            server_cpu=lambda: tree_cpu_seconds(pid),
            machine_cpu=machine_cpu_seconds,
        )
    )


def _measure(server: Started, cell: loadgen.Cell, plan: Plan) -> dict[str, Any]:
    samples = [_sample(server, cell, plan) for _ in range(plan.repetitions)]
    return {"target": server.name, **asdict(cell), **_median(samples)}


def _cells(plan: Plan) -> list[loadgen.Cell]:
    return [
        loadgen.Cell(graph, mode, concurrency)
        for graph in GRAPHS
        for mode in ("stateless", "threaded")
        for concurrency in plan.concurrencies
    ]


def _process(server: Started, idle_rss_mb: float) -> dict[str, Any]:
    return {
        "target": server.name,
        "ready_seconds": server.ready_seconds,
        "idle_rss_mb": idle_rss_mb,
        "rss_after_load_mb": server.rss_mb(),
    }


def _target_rows(
    server: Started, plan: Plan, cells: list[loadgen.Cell] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    time.sleep(1.0)
    idle = server.rss_mb()
    rows = [_measure(server, cell, plan) for cell in cells or _cells(plan)]
    return rows, _process(server, idle)


def _paired_rows(
    servers: list[Started], plan: Plan
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every cell on each server in turn, repetition by repetition, the order reversed on
    every other repetition (A B, B A, ...): a drift in the machine's load between minutes
    falls on both alike, so their rows compare (PostgreSQL alone and with Redis)."""
    time.sleep(1.0)
    idle = {server.name: server.rss_mb() for server in servers}
    samples: dict[tuple[str, loadgen.Cell], list[loadgen.Sample]] = {}
    cells = _cells(plan)
    for cell in cells:
        for repetition in range(plan.repetitions):
            order = servers if repetition % 2 == 0 else servers[::-1]
            for server in order:
                samples.setdefault((server.name, cell), []).append(_sample(server, cell, plan))
    rows = [
        {"target": server.name, **asdict(cell), **_median(samples[(server.name, cell)])}
        for server in servers
        for cell in cells
    ]
    return rows, [_process(server, idle[server.name]) for server in servers]


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


def profile(server: Started, plan: Plan, out: Path) -> dict[str, Any]:
    """py-spy records the server's process tree for `plan.profile_seconds` while the top
    concurrency of threaded main_agent runs loads it: a flame graph SVG in `out`."""
    concurrency = max(plan.concurrencies)
    svg = out / f"profile-main_agent-threaded-c{concurrency}.svg"
    found = shutil.which("py-spy") or str(REPO_ROOT / ".venv" / "bin" / "py-spy")
    if not Path(found).exists():
        return {"svg": None, "error": "py-spy is not installed (uv sync --group dev)"}
    command = [
        found,
        "record",
        "--pid",
        str(server.process.pid),
        "--subprocesses",
        "--duration",
        str(max(1, round(plan.profile_seconds))),
        "--rate",
        "100",
        "--format",
        "flamegraph",
        "--output",
        str(svg),
    ]
    recorder = subprocess.Popen(  # noqa: S603 - py-spy, fixed arguments
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    cell = loadgen.Cell("main_agent", "threaded", concurrency)
    headers = {"X-API-Key": API_KEY}
    deadline = time.monotonic() + plan.profile_seconds + 5

    async def load() -> None:
        while recorder.poll() is None and time.monotonic() < deadline:
            await loadgen.measure(server.url, headers, cell, warmup=0.0, duration=1.0)

    asyncio.run(load())
    output, _ = recorder.communicate(timeout=60)
    if recorder.returncode != 0 or not svg.exists():
        text = output.decode(errors="replace").strip().splitlines()
        return {"svg": None, "error": text[-1] if text else f"py-spy exited {recorder.returncode}"}
    return {
        "svg": svg.name,
        "target": server.name,
        "cell": asdict(cell),
        "seconds": plan.profile_seconds,
    }


def _inprocess(plan: Plan, database: Callable[[], str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for saver in inprocess.SAVERS:
        url = database() if saver == "PostgreSQL" else None
        rows += asyncio.run(
            inprocess.measure(
                saver,
                url,
                GRAPHS,
                plan.concurrencies,
                warmup=plan.warmup,
                duration=plan.duration,
                repetitions=plan.repetitions,
            )
        )
        print(f"bench: in-process, {saver} measured", flush=True)
    return rows


def run(plan: Plan, work: Path, out: Path | None = None) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    out = out or work
    rows: list[dict[str, Any]] = []
    processes: list[dict[str, Any]] = []
    durability: list[dict[str, Any]] = []
    db_work: list[dict[str, Any]] = []
    background_rows: list[dict[str, Any]] = []
    profiled: dict[str, Any] = {"svg": None, "error": "not recorded"}
    with ExitStack() as stack:
        postgres = PostgresServer(settings=dict(PG_SETTINGS)).init().start()
        stack.callback(postgres.destroy)
        redis = RedisServer().start()
        stack.callback(redis.destroy)
        statements = True

        def database() -> str:
            nonlocal statements
            url = postgres.create_database(f"bench_{uuid.uuid4().hex[:8]}")
            asyncio.run(migrate_postgres(url))
            statements = dbwork.enable_statements(url) and statements
            return url

        limit = _inprocess(plan, database)
        layers = http_path.measure(plan.http_path_requests, max(1, plan.repetitions))
        for graph in GRAPHS:
            db_work.append(
                {
                    "target": "in-process, PostgreSQL",
                    "graph": graph,
                    **dbwork.timed(
                        dbwork.inprocess_turns(database(), graph, plan.db_turns, statements)
                    ),
                }
            )
        durable_url = database()
        top = max(plan.concurrencies)

        def announce(server: Started) -> None:
            print(f"bench: {server.name} ready in {server.ready_seconds or 0:.2f} s", flush=True)

        def durability_rows(server: Started) -> None:
            for mode in ("sync", "async", "exit"):
                cell = loadgen.Cell("main_agent", "threaded", plan.durability_concurrency, mode)
                durability.append(_measure(server, cell, plan))

        alone: list[Callable[[], AbstractContextManager[Started]]] = [
            lambda: peer(work),
            lambda: ours("this service, SQLite", work),
        ]
        for open_alone in alone:
            with open_alone() as server:
                announce(server)
                target_rows, process = _target_rows(server, plan)
                rows += target_rows
                processes.append(process)
                background_rows.append(_background(server, plan))
                if server.name == PEER:
                    durability_rows(server)
        # PostgreSQL alone and PostgreSQL + Redis side by side, their cells interleaved.
        with (
            ours(DURABLE, work, DATABASE_URL=durable_url) as durable,
            ours(REDIS, work, DATABASE_URL=database(), REDIS_URL=redis.url) as cached,
        ):
            announce(durable)
            announce(cached)
            paired, paired_processes = _paired_rows([durable, cached], plan)
            rows += paired
            processes += paired_processes
            for server in (durable, cached):
                background_rows.append(_background(server, plan))
            durability_rows(durable)
            for graph in GRAPHS:
                db_work.append(
                    {
                        "target": DURABLE,
                        "graph": graph,
                        **dbwork.timed(
                            dbwork.service_turns(
                                durable.url,
                                {"X-API-Key": API_KEY},
                                durable_url,
                                graph,
                                plan.db_turns,
                                statements,
                            )
                        ),
                    }
                )
            profiled = profile(durable, plan, out)
        with ours(TWO_WORKERS, work, DATABASE_URL=database(), WORKERS="2") as server:
            announce(server)
            cells = [loadgen.Cell(graph, "threaded", top) for graph in GRAPHS]
            target_rows, process = _target_rows(server, plan, cells)
            rows += target_rows
            processes.append(process)
        saver = asyncio.run(checkpoints.measure(database(), plan.checkpoint_count))
    return {
        "plan": asdict(plan),
        "throughput": rows,
        "inprocess": limit,
        "db_work": db_work,
        "profile": profiled,
        "http_path": layers,
        "durability": durability,
        "background": background_rows,
        "processes": processes,
        "checkpoints": saver,
    }
