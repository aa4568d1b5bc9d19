"""PostgreSQL stopped (immediate mode) and Redis killed while the service is under load."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.app.server.conftest import fresh_database
from tests.reliability.figures import Figures
from tests.reliability.load import Acknowledged, missing_runs, run_load
from tests.reliability.service import REQUEST_TIMEOUT, client, drill_env, running
from tools.kit.servers import PostgresServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONCURRENCY = 8


async def _ready_status(http: httpx.AsyncClient) -> int:
    try:
        return (await http.get("/ready", timeout=5)).status_code
    except httpx.HTTPError:
        return 0


def test_postgres_stopped_during_load(tmp_path: Path, postgres_server_own: PostgresServer) -> None:
    env = drill_env(tmp_path, database_url=fresh_database(postgres_server_own))
    figures, acknowledged = Figures("postgres-stopped"), Acknowledged()
    timeline: dict[str, float] = {}
    ready_during_outage: list[int] = []

    async def outage(http: httpx.AsyncClient) -> None:
        await asyncio.sleep(2)
        timeline["stopped"] = time.monotonic()
        await asyncio.to_thread(postgres_server_own.stop, "immediate")
        for _ in range(50):
            ready_during_outage.append(await _ready_status(http))
            if ready_during_outage[-1] == 503:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)
        await asyncio.to_thread(postgres_server_own.start)
        timeline["restarted"] = time.monotonic()
        while time.monotonic() - timeline["restarted"] < 60:
            ok = [t for t, _, s in figures.timeline if s == 200 and t > timeline["restarted"]]
            if ok:
                timeline["recovered"] = min(ok) + 0.0
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(2)
        timeline["done"] = time.monotonic()

    with running(env, tmp_path / "service.log") as process:

        async def scenario() -> list[str]:
            async with client(process) as http:
                events = asyncio.create_task(outage(http))
                await run_load(
                    http,
                    graph="main_agent",
                    runs=1_000_000,
                    concurrency=CONCURRENCY,
                    threads_per_worker=4,
                    figures=figures,
                    acknowledged=acknowledged,
                    stop=lambda: "done" in timeline,
                )
                await events
                assert await _ready_status(http) == 200
                return await missing_runs(http, acknowledged)

        missing = asyncio.run(scenario())

    failed = [(seconds, status) for _, seconds, status in figures.timeline if status != 200]
    recovery = timeline.get("recovered", float("nan")) - timeline["restarted"]
    figures.extra.update(
        {
            "503s": str(sum(status == 503 for _, status in failed)),
            "slowest_failure_ms": f"{max((s for s, _ in failed), default=0) * 1000:.0f}",
            "recovery_s": f"{recovery:.2f}",
            "lost": str(len(missing)),
        }
    )
    figures.report()
    assert failed, "the outage never reached a request"
    # Until PostgreSQL is back every failure is a fast 503. Right after, a thread whose run died
    # in the outage answers 409 until the service frees it (it retries every 0.5 s).
    restarted = timeline["restarted"]
    before = {
        status for start, _, status in figures.timeline if start < restarted and status != 200
    }
    after = [
        (start - restarted, status)
        for start, _, status in figures.timeline
        if start >= restarted and status != 200
    ]
    assert before == {503}
    assert all(status in {503, 409} for _, status in after), after
    assert all(delay < 3 for delay, status in after if status == 409), after
    assert max(seconds for seconds, _ in failed) < REQUEST_TIMEOUT
    assert 503 in ready_during_outage
    assert "recovered" in timeline, "no run succeeded within 60 s of PostgreSQL's return"
    assert missing == []


def test_redis_killed_during_load(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    env = drill_env(
        tmp_path, database_url=fresh_database(postgres_server), redis_url=redis_server.url
    )
    figures, acknowledged = Figures("redis-killed"), Acknowledged()
    done: list[bool] = []

    async def kill_redis() -> None:
        await asyncio.sleep(1.5)
        await asyncio.to_thread(redis_server.stop, True)
        await asyncio.sleep(3)
        done.append(True)

    with running(env, tmp_path / "service.log") as process:

        async def scenario() -> tuple[list[str], int]:
            async with client(process) as http:
                killer = asyncio.create_task(kill_redis())
                await run_load(
                    http,
                    graph="main_agent",
                    runs=1_000_000,
                    concurrency=CONCURRENCY,
                    threads_per_worker=4,
                    figures=figures,
                    acknowledged=acknowledged,
                    stop=lambda: bool(done),
                )
                await killer
                return await missing_runs(http, acknowledged), await _ready_status(http)

        missing, ready = asyncio.run(scenario())
    figures.extra["lost"] = str(len(missing))
    figures.report()
    assert len(figures.statuses) > 50
    assert figures.errors == 0, sorted(set(figures.statuses))
    assert ready == 200
    assert missing == []
