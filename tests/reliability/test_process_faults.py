"""The service process itself fails: SIGKILL mid-run (the thread resumes from its last
checkpoint after a restart) and SIGTERM under load (what was in flight completes).

They run the test launcher's echo graph, whose `respond` node sleeps for `delay` seconds from
the run's config: a run of known length, so the signal lands mid-run every time."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_service.runs import engine as run_engine

from tests.app.server.conftest import fresh_database
from tests.app.server.graphs import GRAPH_ID
from tests.app.server.service import KEYS
from tests.reliability.figures import Figures
from tests.reliability.load import Acknowledged, run_load
from tests.reliability.service import LAUNCHER, client, drill_env, running
from tools.kit.load import say
from tools.kit.servers import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]
HEADERS = {"X-API-Key": KEYS["alice"]}


def _state(url: str, thread_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/threads/{thread_id}/state", headers=HEADERS, timeout=10)
    state: dict[str, Any] = answer.json()
    return state


def test_sigkill_mid_run_then_the_thread_resumes(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    env = drill_env(tmp_path, database_url=fresh_database(postgres_server))
    figures = Figures("sigkill-mid-run")
    with running(env, tmp_path / "first.log", LAUNCHER) as first:
        thread_id = httpx.post(f"{first.url}/threads", json={}, headers=HEADERS).json()["thread_id"]

        async def start_run() -> None:
            async with httpx.AsyncClient(base_url=first.url, headers=HEADERS) as http:
                body = {
                    "assistant_id": GRAPH_ID,
                    "input": say("before the kill"),
                    "config": {"configurable": {"delay": 30}},
                }
                with contextlib.suppress(httpx.HTTPError):  # the process dies under it
                    await http.post(f"/threads/{thread_id}/runs/wait", json=body, timeout=60)

        async def kill_mid_run() -> None:
            pending = asyncio.create_task(start_run())
            for _ in range(200):
                if _state(first.url, thread_id).get("next") == ["respond"]:
                    break
                await asyncio.sleep(0.05)
            first.process.kill()
            await pending

        asyncio.run(kill_mid_run())
        assert first.process.wait(timeout=30) == -signal.SIGKILL

    with running(env, tmp_path / "second.log", LAUNCHER) as second:
        restarted = time.monotonic()
        state = _state(second.url, thread_id)
        assert state["next"] == ["respond"], state  # the checkpoint after `remember` survived
        while True:
            started = time.monotonic()
            answer = httpx.post(
                f"{second.url}/threads/{thread_id}/runs/wait",
                json={"assistant_id": GRAPH_ID},  # no input: continue from the checkpoint
                headers=HEADERS,
                timeout=60,
            )
            figures.add(answer.status_code, time.monotonic() - started, started)
            if answer.status_code != 409 or time.monotonic() - restarted > 90:
                break
            time.sleep(0.5)  # the dead run's lease (15 s, no longer renewed) has not run out
    figures.extra["recovery_s"] = f"{time.monotonic() - restarted:.1f}"
    figures.extra["409_while_the_dead_runs_lease_held"] = str(figures.statuses.count(409))
    figures.report()
    assert answer.status_code == 200, answer.text
    assert time.monotonic() - restarted < run_engine.LEASE_SECONDS + 10
    assert [m["content"] for m in answer.json()["messages"]] == [
        "before the kill",
        "echo: before the kill",
    ]
    assert answer.json()["respond_calls"] == 1


def test_sigterm_under_load_completes_what_was_in_flight(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    env = drill_env(tmp_path, database_url=fresh_database(postgres_server))
    figures, acknowledged = Figures("sigterm-under-load"), Acknowledged()
    signalled: list[float] = []

    with running(env, tmp_path / "service.log", LAUNCHER) as process:

        async def terminate_soon() -> None:
            await asyncio.sleep(2.0)
            signalled.append(time.monotonic())
            process.process.send_signal(signal.SIGTERM)

        async def scenario() -> None:
            async with client(process) as http:
                terminator = asyncio.create_task(terminate_soon())
                await run_load(
                    http,
                    graph=GRAPH_ID,
                    runs=1_000_000,
                    concurrency=12,
                    threads_per_worker=1,
                    figures=figures,
                    acknowledged=acknowledged,
                    extra={"config": {"configurable": {"delay": 1.0}}},
                    # No new request once the signal is sent: what is measured is what was
                    # in flight then.
                    stop=lambda: bool(signalled),
                )
                await terminator

        asyncio.run(scenario())
        exit_code = process.process.wait(timeout=60)
    term = signalled[0]
    in_flight = [
        (started, status)
        for started, _, status in figures.timeline
        if started < term - 0.05 and started + 1.0 > term
    ]
    before = [status for started, _, status in figures.timeline if started < term - 0.05]
    # A request sent in the last 50 ms may race the listener closing: not counted either way.
    figures.extra.update({"in_flight_at_sigterm": str(len(in_flight)), "exit": str(exit_code)})
    figures.report()
    assert in_flight, "nothing was in flight when SIGTERM arrived"
    assert set(before) == {200}, f"cut: {sorted(set(before))}"
