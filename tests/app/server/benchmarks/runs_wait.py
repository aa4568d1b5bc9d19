"""Measure the service: idle RSS, start-to-ready time, and runs/wait throughput on PostgreSQL.

Not a test (no assertion, not collected). Starts a throw-away PostgreSQL on loopback, migrates
it, starts the service as a process and drives `/threads/{id}/runs/wait` with an async httpx
loop at concurrency 8 (each worker on its own thread: a thread runs one run at a time).

    uv run python -m tests.app.server.benchmarks.runs_wait          # main_agent via serve
    uv run python -m tests.app.server.benchmarks.runs_wait --echo   # the echo test graph
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
from agent_service.persistence.migrations import migrate_postgres

from tests.app.server.service import KEYS, api_keys_json, service_env
from tests.support.ports import free_port
from tests.support.servers import PostgresServer

CONCURRENCY = 8


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def drive(url: str, graph: str, seconds: float) -> tuple[int, int, float]:
    headers = {"X-API-Key": KEYS["alice"]}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        threads = [
            (await client.post("/threads", json={})).json()["thread_id"] for _ in range(CONCURRENCY)
        ]
        body = {
            "assistant_id": graph,
            "input": {"messages": [{"role": "user", "content": "hello, what can you do?"}]},
        }
        # Warm-up: one run per thread.
        await asyncio.gather(*(client.post(f"/threads/{t}/runs/wait", json=body) for t in threads))
        done = failed = 0
        deadline = time.perf_counter() + seconds

        async def worker(thread_id: str) -> None:
            nonlocal done, failed
            while time.perf_counter() < deadline:
                response = await client.post(f"/threads/{thread_id}/runs/wait", json=body)
                if response.status_code == 200:
                    done += 1
                else:
                    failed += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(t) for t in threads))
        return done, failed, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--echo", action="store_true", help="the tests' echo graph")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    server = PostgresServer().init().start()
    try:
        url = server.create_database("bench")
        asyncio.run(migrate_postgres(url))
        port = free_port()
        env = service_env(
            database_url=url,
            api_keys=api_keys_json(),
            host="127.0.0.1",
            port=port,
            rate_limit_per_minute=10_000_000,
            log_level="WARNING",
            workers=args.workers,
        )
        if args.echo:
            command = [sys.executable, "-m", "tests.app.server.launcher"]
            graph = "echo_agent"
        else:
            command = [str(Path(sys.executable).parent / "agent-service"), "serve"]
            graph = "main_agent"
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise SystemExit("the service exited before it was ready")
            time.sleep(0.02)
        ready_after = time.monotonic() - started
        time.sleep(2)
        idle = rss_mib(process.pid)
        done, failed, elapsed = asyncio.run(drive(base, graph, args.seconds))
        loaded = rss_mib(process.pid)
        process.terminate()
        process.wait(30)
        print(f"graph {graph}, workers {args.workers}, PostgreSQL on loopback")
        print(f"start to /ready 200: {ready_after:.2f} s")
        print(f"idle RSS: {idle:.0f} MiB (after load: {loaded:.0f} MiB)")
        print(
            f"runs/wait: {done / elapsed:.1f} req/s at concurrency {CONCURRENCY} "
            f"({done} ok, {failed} failed in {elapsed:.1f} s)"
        )
    finally:
        server.destroy()


if __name__ == "__main__":
    main()
