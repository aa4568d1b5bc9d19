"""The shared run queue against a careless or hostile principal: bounds that keep one
principal from starving the others, and a run that keeps killing its workers."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from agent_service.persistence.sqlite_tables import SqliteTables
from agent_service.runs import queue as run_queue
from agent_service.runs.queue import MAX_RUN_CLAIMS

from tests.app.server.conftest import fresh_database, make_settings
from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.scrape import scrape, value
from tests.app.server.service import serve_in_thread
from tools.kit.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.integration

LATER = 600.0
SLOW = {"configurable": {"delay": 30}}


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        return {}
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return {"database_url": fresh_database(server)}


def test_one_principal_cannot_fill_the_queue(tmp_path: Path, database: dict[str, str]) -> None:
    settings = make_settings(tmp_path, max_active_runs_per_principal=2, **database)
    with serve_in_thread(settings) as service, service.http("alice") as alice:
        delayed = {"assistant_id": GRAPH_ID, "input": say("later"), "after_seconds": LATER}
        first = alice.post("/runs", json=delayed)
        assert first.status_code == 200, first.text
        assert alice.post("/runs", json=delayed).status_code == 200
        refused = alice.post("/runs", json=delayed)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"] == "too_many_runs"
        assert "MAX_ACTIVE_RUNS_PER_PRINCIPAL" in refused.json()["detail"]
        batch = alice.post("/runs/batch", json=[delayed, delayed])
        assert batch.status_code == 429, batch.text
        assert batch.json()["submitted"] == []
        # The bound is the principal's own: another principal's runs are still taken.
        with service.http("bob") as bob:
            assert bob.post("/runs", json=delayed).status_code == 200
        # A run that ended frees its place.
        run = first.json()
        cancelled = alice.post(
            f"/threads/{run['thread_id']}/runs/{run['run_id']}/cancel", params={"wait": True}
        )
        assert cancelled.status_code == 204, cancelled.text
        assert alice.post("/runs", json=delayed).status_code == 200


def _set_claims(tmp_path: Path, database: dict[str, str], run_id: str, claims: int) -> None:
    """As if `claims` workers had claimed the run and died (SIGKILL, out of memory)."""
    statement = "UPDATE agent_run_queue SET attempts = {mark} WHERE run_id = {mark}"
    if "database_url" in database:
        with psycopg.connect(database["database_url"], autocommit=True) as conn:
            conn.execute(statement.format(mark="%s"), (claims, run_id))
        return
    with contextlib.closing(sqlite3.connect(tmp_path / "service.sqlite", timeout=30)) as conn:
        conn.execute(statement.format(mark="?"), (claims, run_id))
        conn.commit()


def test_a_run_that_keeps_killing_its_workers_is_given_up(
    tmp_path: Path, database: dict[str, str]
) -> None:
    settings = make_settings(tmp_path, run_queue_poll_seconds=0.1, **database)
    with serve_in_thread(settings) as service, service.http("alice") as alice:
        tid = alice.post("/threads", json={}).json()["thread_id"]
        body = {"assistant_id": GRAPH_ID, "input": say("boom"), "after_seconds": 1}
        run = alice.post(f"/threads/{tid}/runs", json=body).json()
        _set_claims(tmp_path, database, run["run_id"], MAX_RUN_CLAIMS)
        joined = alice.get(f"/threads/{tid}/runs/{run['run_id']}/join")
        assert joined.status_code == 200, joined.text
        assert "given up" in joined.json()["__error__"]["message"]
        record = alice.get(f"/threads/{tid}/runs/{run['run_id']}").json()
        assert record["status"] == "error"
        # The thread is free again: the next run on it executes.
        again = alice.post(f"/threads/{tid}/runs/wait", json={"assistant_id": GRAPH_ID})
        assert again.status_code == 200, again.text


def _claims_and_status(tmp_path: Path, database: dict[str, str], run_id: str) -> tuple[int, str]:
    statement = (
        "SELECT q.attempts, r.status FROM agent_run_queue AS q "
        "JOIN agent_runs AS r ON r.run_id = q.run_id WHERE q.run_id = {mark}"
    )
    if "database_url" in database:
        with psycopg.connect(database["database_url"]) as conn:
            row = conn.execute(statement.format(mark="%s"), (run_id,)).fetchone()
    else:
        with contextlib.closing(sqlite3.connect(tmp_path / "service.sqlite")) as conn:
            row = conn.execute(statement.format(mark="?"), (run_id,)).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def test_a_run_handed_back_at_shutdown_is_not_counted_as_a_dead_worker(
    tmp_path: Path, database: dict[str, str]
) -> None:
    settings = make_settings(
        tmp_path, run_queue_poll_seconds=0.1, shutdown_grace_seconds=0.5, **database
    )
    with serve_in_thread(settings) as service, service.http("alice") as alice:
        tid = alice.post("/threads", json={}).json()["thread_id"]
        slow = {"assistant_id": GRAPH_ID, "input": say("slow"), "config": SLOW}
        run = alice.post(f"/threads/{tid}/runs", json=slow).json()
        for _ in range(500):
            if alice.get(f"/threads/{tid}/runs/{run['run_id']}").json()["status"] == "running":
                break
            time.sleep(0.01)
    # The service stopped with the run executing: back in the queue (status `running` under
    # a released lease, read as `pending`), that claim not counted.
    assert _claims_and_status(tmp_path, database, run["run_id"]) == (0, "running")


def test_an_execution_whose_claim_was_superseded_stops(
    tmp_path: Path, database: dict[str, str]
) -> None:
    """A worker alive past its lease (the database away longer than RUN_LEASE_SECONDS) finds
    the run claimed again by another worker: it must stop, not execute the run a second time
    beside the new claim. Here the later claim is made by hand; the stopped execution leaves
    the run to the lease, after which the service's worker claims it (a third claim) and
    completes it from its last checkpoint."""
    settings = make_settings(
        tmp_path, run_queue_poll_seconds=0.1, run_lease_seconds=1.5, **database
    )
    with serve_in_thread(settings) as service, service.http("alice") as alice:
        tid = alice.post("/threads", json={}).json()["thread_id"]
        slow = {
            "assistant_id": GRAPH_ID,
            "input": say("slow"),
            "config": {"configurable": {"delay": 4}},
        }
        run = alice.post(f"/threads/{tid}/runs", json=slow).json()
        for _ in range(500):
            if _claims_and_status(tmp_path, database, run["run_id"]) == (1, "running"):
                break
            time.sleep(0.01)
        _set_claims(tmp_path, database, run["run_id"], 2)
        joined = alice.get(f"/threads/{tid}/runs/{run['run_id']}/join")
        assert joined.status_code == 200, joined.text
        assert [m["content"] for m in joined.json()["messages"]] == ["slow", "echo: slow"]
        # Completed by the third claim, not by the superseded first execution.
        assert _claims_and_status(tmp_path, database, run["run_id"]) == (3, "success")


def test_deleting_a_user_thread_or_run_deletes_its_event_logs(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    """A background run's event log (in Redis, for join_stream) holds its input and output: it
    goes with the run, not EVENTS_TTL_SECONDS later."""
    settings = make_settings(
        tmp_path,
        database_url=fresh_database(postgres_server),
        redis_url=redis_server.url,
        admin_principals="bob",
        run_queue_poll_seconds=0.1,
    )
    cache = redis.Redis.from_url(redis_server.url)

    def joined_run(client: httpx.Client, tid: str) -> str:
        body = {"assistant_id": GRAPH_ID, "input": say("my secret"), "stream_resumable": True}
        run_id = str(client.post(f"/threads/{tid}/runs", json=body).json()["run_id"])
        assert client.get(f"/threads/{tid}/runs/{run_id}/join").status_code == 200
        assert cache.exists(f"agent:events:run:{run_id}")
        return run_id

    with serve_in_thread(settings) as service, service.http("alice") as alice:
        threads = [alice.post("/threads", json={}).json()["thread_id"] for _ in range(3)]
        by_run, by_thread, by_user = (joined_run(alice, tid) for tid in threads)
        assert alice.delete(f"/threads/{threads[0]}/runs/{by_run}").status_code == 204
        assert not cache.exists(f"agent:events:run:{by_run}")
        assert alice.delete(f"/threads/{threads[1]}").status_code == 204
        assert not cache.exists(f"agent:events:run:{by_thread}")
        assert not cache.exists(f"agent:events:thread:{threads[1]}")
        with service.http("bob") as bob:
            assert bob.delete("/users/alice").status_code == 200
        assert not cache.exists(f"agent:events:run:{by_user}")
        assert not cache.exists(f"agent:events:thread:{threads[2]}")
    cache.close()


@pytest.mark.parametrize("event_id", ["abc", "$", "+", "1-2-3", "99999999999999999999-0"])
def test_a_last_event_id_this_server_never_sent_is_unprocessable(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer, event_id: str
) -> None:
    """Redis refused it on every XREAD: the stream broke off with no answer (or, for `$`,
    skipped every event)."""
    settings = make_settings(
        tmp_path, database_url=fresh_database(postgres_server), redis_url=redis_server.url
    )
    with serve_in_thread(settings) as service, service.http("alice") as alice:
        tid = alice.post("/threads", json={}).json()["thread_id"]
        body = {"assistant_id": GRAPH_ID, "input": say("x"), "stream_resumable": True}
        run_id = alice.post(f"/threads/{tid}/runs", json=body).json()["run_id"]
        assert alice.get(f"/threads/{tid}/runs/{run_id}/join").status_code == 200
        stream = f"/threads/{tid}/runs/{run_id}/stream"
        answer = alice.get(stream, headers={"Last-Event-ID": event_id})
        assert answer.status_code == 422, answer.text
        assert "Last-Event-ID" in answer.json()["detail"]
        replay = alice.get(stream, headers={"Last-Event-ID": "0"})
        assert replay.status_code == 200
        assert "event: metadata" in replay.text


def test_a_cancel_that_arrives_while_the_run_records_its_end_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cancel races the run's completion: the graph is done and the run is writing its
    outcome when the cancel lands. Recording the end must finish (status, thread freed);
    cancelled half-way it left the run `running` and its thread busy until the lease ran out."""
    entered = threading.Event()
    record = SqliteTables.end_run

    async def slow_end(
        self: SqliteTables, run_id: str, thread_id: str, status: Any, error: Any, thread: Any
    ) -> None:
        entered.set()
        await asyncio.sleep(1.0)
        await record(self, run_id, thread_id, status, error, thread)

    monkeypatch.setattr(SqliteTables, "end_run", slow_end)
    settings = make_settings(
        tmp_path, run_queue_poll_seconds=0.1, run_lease_seconds=120, request_timeout_seconds=8
    )
    with serve_in_thread(settings) as service, service.http("alice") as alice:
        tid = alice.post("/threads", json={}).json()["thread_id"]
        body = {"assistant_id": GRAPH_ID, "input": say("done")}
        run_id = alice.post(f"/threads/{tid}/runs", json=body).json()["run_id"]
        assert entered.wait(10)
        alice.post(f"/threads/{tid}/runs/{run_id}/cancel")
        joined = alice.get(f"/threads/{tid}/runs/{run_id}/join")
        assert joined.status_code == 200, joined.text
        assert alice.get(f"/threads/{tid}/runs/{run_id}").json()["status"] == "success"
        assert alice.get(f"/threads/{tid}").json()["status"] == "idle"


def test_the_queue_depth_counts_runs_that_can_start_in_parallel(
    tmp_path: Path, database: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker HPA scales on this gauge. Runs enqueued on one thread execute one after
    another: counted each, 50 runs on one thread asked for workers that could only wait."""
    monkeypatch.setattr(run_queue, "DEPTH_PUBLISH_SECONDS", 0.1)
    settings = make_settings(tmp_path, run_workers=0, **database)
    with serve_in_thread(settings) as service, service.http("alice") as alice:
        tid = alice.post("/threads", json={}).json()["thread_id"]
        queued = {"assistant_id": GRAPH_ID, "input": say("q"), "multitask_strategy": "enqueue"}
        for _ in range(3):
            assert alice.post(f"/threads/{tid}/runs", json=queued).status_code == 200
        assert alice.post("/runs", json={"assistant_id": GRAPH_ID}).status_code == 200
        depth = -1.0
        for _ in range(100):
            depth = value(scrape(service.url), "agent_service_run_queue_depth")
            if depth == 2:
                break
            time.sleep(0.05)
        assert depth == 2


def test_a_stored_request_that_no_longer_validates_is_not_logged(tmp_path: Path) -> None:
    """After a deploy changes what a run request may hold, a stored request fails validation
    when it is claimed; pydantic's message quotes the offending value (a webhook's token, a
    message), which must not reach the log."""
    marker = "tok-3f9a1c"
    settings = make_settings(tmp_path, run_queue_poll_seconds=0.1)
    with serve_in_thread(settings) as service, service.http("alice") as alice:
        stream = io.StringIO()
        handler = logging.getLogger().handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        original = handler.setStream(stream)
        try:
            tid = alice.post("/threads", json={}).json()["thread_id"]
            body = {"assistant_id": GRAPH_ID, "input": say("x"), "after_seconds": 1}
            run_id = alice.post(f"/threads/{tid}/runs", json=body).json()["run_id"]
            stored = {"assistant_id": GRAPH_ID, "retired_field": f"https://h.example/?t={marker}"}
            with contextlib.closing(sqlite3.connect(tmp_path / "service.sqlite", timeout=30)) as db:
                db.execute(
                    "UPDATE agent_run_queue SET kwargs = ? WHERE run_id = ?",
                    (json.dumps(stored), run_id),
                )
                db.commit()
            joined = alice.get(f"/threads/{tid}/runs/{run_id}/join")
            assert joined.status_code == 200, joined.text
            assert "__error__" in joined.json()
        finally:
            handler.setStream(original)
    logged = stream.getvalue()
    assert "queued run could not start" in logged
    assert "retired_field" in logged
    assert marker not in logged
