"""2,000 runs at concurrency 32: no error, nothing acknowledged lost."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.app.server.conftest import fresh_database
from tests.reliability.figures import Figures
from tests.reliability.load import Acknowledged, missing_runs, run_load
from tests.reliability.service import client, drill_env, running
from tools.kit.servers import PostgresServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_2000_runs_at_concurrency_32(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    env = drill_env(
        tmp_path,
        database_url=fresh_database(postgres_server),
        redis_url=redis_server.url,
        workers=2,
    )
    figures, acknowledged = Figures("load"), Acknowledged()
    with running(env, tmp_path / "service.log") as process:

        async def scenario() -> tuple[float, list[str]]:
            async with client(process) as http:
                started = time.monotonic()
                await run_load(
                    http,
                    graph="main_agent",
                    runs=2000,
                    concurrency=32,
                    threads_per_worker=8,
                    figures=figures,
                    acknowledged=acknowledged,
                )
                return time.monotonic() - started, await missing_runs(http, acknowledged)

        elapsed, missing = asyncio.run(scenario())
    figures.extra["runs_per_s"] = f"{len(figures.statuses) / elapsed:.0f}"
    figures.extra["lost"] = str(len(missing))
    figures.report()
    assert len(figures.statuses) == 2000
    assert figures.errors == 0, sorted(set(figures.statuses))
    assert missing == []
