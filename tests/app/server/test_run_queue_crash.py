"""A background run survives the death of the process executing it: SIGKILL the service that
claimed it mid-run, and an `agent-service worker` process claims it once its lease has run
out, continues it from its last checkpoint, and completes it exactly once."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.app.server.conftest import fresh_database
from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.service import (
    KEYS,
    api_keys_json,
    serve_in_process,
    service_env,
    wait_until_ready,
)
from tools.kit.launcher import worker_command
from tools.kit.servers import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEADERS = {"X-API-Key": KEYS["alice"]}
ECHO = "tests.app.server.graphs:echo_graph_source"
# Long enough to be killed in the middle of `respond`; the lease short, so the test is quick.
DELAY_SECONDS = 4
LEASE_SECONDS = 2


def _until(what: str, check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_worker_s_run_completes_once_on_another(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = fresh_database(postgres_server)
    env = service_env(
        database_url=url,
        api_keys=api_keys_json(),
        run_lease_seconds=LEASE_SECONDS,
        run_queue_poll_seconds=0.2,
    )
    with serve_in_process(env, tmp_path / "first.log") as first:
        wait_until_ready(first.url)
        api = first.url
        thread = httpx.post(f"{api}/threads", json={}, headers=HEADERS).json()["thread_id"]
        run = httpx.post(
            f"{api}/threads/{thread}/runs",
            json={
                "assistant_id": GRAPH_ID,
                "input": say("survive"),
                "config": {"configurable": {"delay": DELAY_SECONDS}},
            },
            headers=HEADERS,
        ).json()

        def checkpointed() -> bool:
            state = httpx.get(f"{api}/threads/{thread}/state", headers=HEADERS).json()
            return "messages" in (state.get("values") or {})

        # The run is inside `respond`: its input and `remember` are checkpointed.
        _until("the run's first checkpoints", checkpointed)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=30)

    worker_env = {**env, "RUN_WORKERS": "1"}
    with (
        serve_in_process(worker_env, tmp_path / "worker.log", worker_command(ECHO)) as worker,
        serve_in_process({**env, "RUN_WORKERS": "0"}, tmp_path / "api.log") as second,
    ):
        wait_until_ready(second.url)
        api = second.url

        def ended() -> dict[str, Any] | None:
            got = httpx.get(f"{api}/threads/{thread}/runs/{run['run_id']}", headers=HEADERS)
            body: dict[str, Any] = got.json()
            return body if body["status"] not in ("pending", "running") else None

        done = _until("the run to end on the worker", ended)
        assert done["status"] == "success", worker.log()
        state = httpx.get(f"{api}/threads/{thread}/state", headers=HEADERS).json()
        assert [m["content"] for m in state["values"]["messages"]] == [
            "survive",
            "echo: survive",
        ]
        # `respond` completed once: the second worker continued, it did not start over.
        assert state["values"]["respond_calls"] == 1
        assert "queued run claimed" in worker.log()
    with psycopg.connect(url) as conn:
        attempts, worker_name = conn.execute(
            "SELECT attempts, worker FROM agent_run_queue WHERE run_id = %s", (run["run_id"],)
        ).fetchone() or (None, None)
        inputs = conn.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = %s "
            "AND metadata ->> 'source' = 'input'",
            (thread,),
        ).fetchone()
    # Claimed twice (the killed process, then the worker), its input written once.
    assert attempts == 2
    assert worker_name is not None
    assert inputs == (1,)


def test_a_stopping_worker_hands_its_run_back_at_once(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """SIGTERM: a run that does not finish within the drain goes back to the queue with its
    thread freed, so the next worker takes it without waiting for the lease to run out."""
    url = fresh_database(postgres_server)
    env = service_env(
        database_url=url,
        api_keys=api_keys_json(),
        run_queue_poll_seconds=0.2,
        shutdown_grace_seconds=1,
        # Long: a takeover within the test's time can only come from the hand-back.
        run_lease_seconds=600,
    )
    with serve_in_process({**env, "RUN_WORKERS": "0"}, tmp_path / "api.log") as api_process:
        wait_until_ready(api_process.url)
        api = api_process.url
        thread = httpx.post(f"{api}/threads", json={}, headers=HEADERS).json()["thread_id"]
        with serve_in_process(
            {**env, "RUN_WORKERS": "1"}, tmp_path / "first.log", worker_command(ECHO)
        ) as first:
            run = httpx.post(
                f"{api}/threads/{thread}/runs",
                json={
                    "assistant_id": GRAPH_ID,
                    "input": say("handed back"),
                    "config": {"configurable": {"delay": DELAY_SECONDS}},
                },
                headers=HEADERS,
            ).json()

            def checkpointed() -> bool:
                state = httpx.get(f"{api}/threads/{thread}/state", headers=HEADERS).json()
                return "messages" in (state.get("values") or {})

            _until("the run's first checkpoints", checkpointed)
            first.process.send_signal(signal.SIGTERM)
            assert first.process.wait(timeout=30) == 0, first.log()
        assert "background run handed back to the queue" in first.log()
        with serve_in_process(
            {**env, "RUN_WORKERS": "1"}, tmp_path / "second.log", worker_command(ECHO)
        ) as second:

            def ended() -> dict[str, Any] | None:
                got = httpx.get(f"{api}/threads/{thread}/runs/{run['run_id']}", headers=HEADERS)
                body: dict[str, Any] = got.json()
                return body if body["status"] not in ("pending", "running") else None

            done = _until("the run to end on the second worker", ended)
            assert done["status"] == "success", second.log()
        state = httpx.get(f"{api}/threads/{thread}/state", headers=HEADERS).json()
        assert [m["content"] for m in state["values"]["messages"]] == [
            "handed back",
            "echo: handed back",
        ]
        assert state["values"]["respond_calls"] == 1
