"""Crons through the HTTP API (the official SDK where it can say it): schedules validated,
per-principal isolation, the graph allow-list, limits, GDPR, and a firing that runs."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langgraph_sdk.errors import NotFoundError, PermissionDeniedError

from tests.app.server.conftest import fresh_database, make_settings
from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.service import (
    Service,
    api_keys_json,
    serve_in_process,
    serve_in_thread,
    service_env,
)
from tools.kit.launcher import worker_command
from tools.kit.servers import PostgresServer


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    settings = make_settings(
        tmp_path,
        cron_min_interval_seconds=300,
        cron_max_per_principal=3,
        cron_poll_seconds=0.1,
    )
    with serve_in_thread(settings) as running:
        yield running


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ("* * * * * *", "schedule"),  # six fields: croniter's seconds
        ("61 * * * *", "schedule"),
        ("every day", "schedule"),
        ("0 0 31 2 *", "schedule"),  # never fires
        ("*/2 * * * *", "schedule"),  # under CRON_MIN_INTERVAL_SECONDS (300 here)
        ("0,1 9 * * *", "schedule"),  # two firings a minute apart, once a day
        ("x" * 201, "schedule"),
    ],
)
def test_a_bad_schedule_answers_422_naming_the_field(
    service: Service, schedule: str, field: str
) -> None:
    with service.http() as http:
        answer = http.post("/runs/crons", json={"assistant_id": GRAPH_ID, "schedule": schedule})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "validation_error"
    assert field in body["detail"]
    with service.http() as http:
        assert http.post("/runs/crons/count", json={}).json() == 0


def test_bad_timezones_end_times_and_unknown_fields_answer_422(service: Service) -> None:
    bodies: list[dict[str, Any]] = [
        {"timezone": "Mars/Olympus"},
        {"end_time": "not a time"},
        # Past datetime.max in UTC (and before year 1): an OverflowError was a 500.
        {"end_time": "9999-12-31T23:59:59-14:00"},
        {"end_time": "0001-01-01T00:00:00+14:00"},
        {"stream_resumable": True},
        {"multitask_strategy": "interrupt"},
        {"webhook": "https://hooks.example.com/x"},  # WEBHOOK_ALLOWED_HOSTS is empty
        {"input": "a string"},
        {"unknown_field": 1},
        {"checkpoint_during": True},
        {"enabled": "yes"},
    ]
    with service.http() as http:
        for extra in bodies:
            answer = http.post(
                "/runs/crons", json={"assistant_id": GRAPH_ID, "schedule": "@daily", **extra}
            )
            assert answer.status_code == 422, (extra, answer.text)
            assert next(iter(extra)) in answer.json()["detail"], answer.json()


def test_another_principals_crons_are_invisible(service: Service) -> None:
    async def scenario() -> None:
        alice, bob = service.client("alice"), service.client("bob")
        thread = await alice.threads.create()
        mine: Any = await alice.crons.create_for_thread(
            thread["thread_id"], GRAPH_ID, schedule="0 9 * * *", input=say("hi")
        )
        assert await bob.crons.search() == []
        assert await bob.crons.count() == 0
        assert await bob.crons.search(thread_id=thread["thread_id"]) == []
        with pytest.raises(NotFoundError):
            await bob.crons.update(mine["cron_id"], schedule="0 10 * * *")
        with pytest.raises(NotFoundError):
            await bob.crons.delete(mine["cron_id"])
        # bob cannot hang a cron on alice's thread either.
        with pytest.raises(NotFoundError):
            await bob.crons.create_for_thread(thread["thread_id"], GRAPH_ID, schedule="@daily")
        (still,) = await alice.crons.search()
        assert still["schedule"] == "0 9 * * *"
        assert still["user_id"] == "alice"

    asyncio.run(scenario())


def test_unknown_assistants_and_disallowed_graphs_are_refused(tmp_path: Path) -> None:
    # bob may use no graph at all.
    with serve_in_thread(make_settings(tmp_path, principal_graphs={"bob": []})) as running:

        async def scenario() -> None:
            bob = running.client("bob")
            with pytest.raises(NotFoundError):
                await bob.crons.create("no_such_assistant", schedule="@daily")
            with pytest.raises(PermissionDeniedError, match="PRINCIPAL_GRAPHS"):
                await bob.crons.create(GRAPH_ID, schedule="@daily")
            assert await bob.crons.count() == 0

        asyncio.run(scenario())


def test_unknown_fields_of_every_cron_body_answer_422_naming_them(service: Service) -> None:
    with service.http() as http:
        thread_id = http.post("/threads", json={}).json()["thread_id"]
        cron_id = http.post(
            "/runs/crons", json={"assistant_id": GRAPH_ID, "schedule": "@daily"}
        ).json()["cron_id"]
        for method, path in (
            ("POST", "/runs/crons/search"),
            ("POST", "/runs/crons/count"),
            ("PATCH", f"/runs/crons/{cron_id}"),
            ("POST", f"/threads/{thread_id}/runs/crons"),
        ):
            answer = http.request(method, path, json={"sorting": "x"})
            assert answer.status_code == 422, (path, answer.text)
            assert "sorting" in answer.json()["detail"]
        # A thread's cron has no on_run_completed (its thread stays).
        refused = http.post(
            f"/threads/{thread_id}/runs/crons",
            json={"assistant_id": GRAPH_ID, "schedule": "@daily", "on_run_completed": "keep"},
        )
        assert refused.status_code == 422
        assert "on_run_completed" in refused.json()["detail"]


def test_a_principal_has_at_most_cron_max_per_principal(service: Service) -> None:
    with service.http() as http:
        for _ in range(3):
            ok = http.post("/runs/crons", json={"assistant_id": GRAPH_ID, "schedule": "@daily"})
            assert ok.status_code == 200, ok.text
        refused = http.post("/runs/crons", json={"assistant_id": GRAPH_ID, "schedule": "@daily"})
    assert refused.status_code == 409
    assert "CRON_MAX_PER_PRINCIPAL" in refused.json()["detail"]


def test_gdpr_delete_removes_the_users_crons_and_export_lists_them(service: Service) -> None:
    async def scenario() -> None:
        alice, bob = service.client("alice"), service.client("bob")
        await alice.crons.create(GRAPH_ID, schedule="@daily", metadata={"k": "v"})
        await bob.crons.create(GRAPH_ID, schedule="@hourly")

    asyncio.run(scenario())
    with service.http() as http:
        exported = http.get("/users/alice/export").json()
        assert [c["metadata"] for c in exported["crons"]] == [{"k": "v"}]
        deleted = http.delete("/users/alice").json()
        assert deleted["deleted"]["crons"] == 1
        assert http.post("/runs/crons/count", json={}).json() == 0
    with service.http("bob") as http:
        assert http.post("/runs/crons/count", json={}).json() == 1


def _make_due(path: Path, cron_id: str) -> None:
    """Bring the cron's next firing to now: a test cannot wait for the clock's next minute."""
    past = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE agent_crons SET next_run_at = ? WHERE cron_id = ?", (past, cron_id))


def test_a_due_thread_cron_runs_once_on_its_thread(service: Service, tmp_path: Path) -> None:
    async def scenario() -> None:
        alice = service.client("alice")
        thread = await alice.threads.create()
        cron: Any = await alice.crons.create_for_thread(
            thread["thread_id"], GRAPH_ID, schedule="0 9 * * *", input=say("scheduled hello")
        )
        _make_due(tmp_path / "service.sqlite", cron["cron_id"])
        deadline = time.monotonic() + 20
        state: Any = {}
        while time.monotonic() < deadline:
            # The status first: a state read after an idle thread is the run's final state
            # (read the other way round, the run could end between the two reads).
            current = await alice.threads.get(thread["thread_id"])
            state = await alice.threads.get_state(thread["thread_id"])
            if state["values"] and current["status"] == "idle":
                break
            await asyncio.sleep(0.1)
        messages = state["values"]["messages"]
        assert [m["content"] for m in messages] == ["scheduled hello", "echo: scheduled hello"]
        # Once: more polls later, still one firing; the cron waits for tomorrow 09:00 UTC.
        await asyncio.sleep(0.5)
        again: Any = await alice.threads.get_state(thread["thread_id"])
        assert len(again["values"]["messages"]) == 2
        (stored,) = await alice.crons.search()
        next_run = datetime.fromisoformat(str(stored["next_run_date"]))
        assert (next_run.hour, next_run.minute) == (9, 0)
        assert next_run > datetime.now(UTC)

    asyncio.run(scenario())


def test_a_thread_cron_goes_with_its_thread(service: Service) -> None:
    async def scenario() -> None:
        alice = service.client("alice")
        thread = await alice.threads.create()
        await alice.crons.create_for_thread(thread["thread_id"], GRAPH_ID, schedule="@daily")
        await alice.crons.create(GRAPH_ID, schedule="@daily")
        assert await alice.crons.count(thread_id=thread["thread_id"]) == 1
        await alice.threads.delete(thread["thread_id"])
        assert await alice.crons.count(thread_id=thread["thread_id"]) == 0
        assert await alice.crons.count() == 1

    asyncio.run(scenario())


@pytest.mark.integration
def test_two_replicas_on_one_postgres_fire_each_due_cron_once(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """Two services (two pools, two schedulers, two queues) on one database: every due cron
    becomes exactly one run."""
    url = fresh_database(postgres_server)
    settings = make_settings(tmp_path, database_url=url, cron_poll_seconds=0.05)
    with serve_in_thread(settings) as one, serve_in_thread(settings):
        with one.http() as http:
            ids = [
                http.post(
                    "/runs/crons",
                    json={"assistant_id": GRAPH_ID, "schedule": "@daily", "input": say("x")},
                ).json()["cron_id"]
                for _ in range(5)
            ]
        with psycopg.connect(url) as conn:
            conn.execute(
                "UPDATE agent_crons SET next_run_at = now() - interval '1 second' "
                "WHERE cron_id = ANY(%s)",
                (ids,),
            )

        def fired() -> dict[str, int]:
            with psycopg.connect(url) as conn:
                rows = conn.execute(
                    "SELECT metadata->>'cron_id', count(*) FROM agent_runs "
                    "WHERE metadata->>'cron_id' = ANY(%s) GROUP BY 1",
                    (ids,),
                ).fetchall()
            return {str(cron_id): int(n) for cron_id, n in rows}

        deadline = time.monotonic() + 20
        while len(fired()) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.1)
        # Many more polls of both schedulers: still one run per cron.
        time.sleep(0.5)
        assert fired() == dict.fromkeys(ids, 1)


@pytest.mark.integration
def test_an_agent_service_worker_fires_crons_too(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """The API's pods may leave scheduling to the worker Deployment: with CRON_SCHEDULER off
    in the API, a due cron fires from an `agent-service worker` process."""
    url = fresh_database(postgres_server)
    api_settings = make_settings(tmp_path, database_url=url, cron_scheduler=False, run_workers=0)
    env = service_env(
        database_url=url,
        api_keys=api_keys_json(),
        cron_poll_seconds=0.1,
        run_workers=1,
        run_queue_poll_seconds=0.1,
    )
    argv = worker_command("tests.app.server.graphs:echo_graph_source")
    with (
        serve_in_thread(api_settings) as api,
        serve_in_process(env, tmp_path / "worker.log", argv) as worker,
    ):
        with api.http() as http:
            thread_id = http.post("/threads", json={}).json()["thread_id"]
            cron_id = http.post(
                f"/threads/{thread_id}/runs/crons",
                json={"assistant_id": GRAPH_ID, "schedule": "@daily", "input": say("w")},
            ).json()["cron_id"]
        with psycopg.connect(url) as conn:
            conn.execute(
                "UPDATE agent_crons SET next_run_at = now() - interval '1 second' "
                "WHERE cron_id = %s",
                (cron_id,),
            )

        def statuses() -> list[str]:
            with psycopg.connect(url) as conn:
                rows = conn.execute(
                    "SELECT status FROM agent_runs WHERE metadata->>'cron_id' = %s", (cron_id,)
                ).fetchall()
            return [str(row[0]) for row in rows]

        deadline = time.monotonic() + 60
        while statuses() != ["success"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert statuses() == ["success"], worker.log()
        assert "cron fired" in worker.log()


def test_a_cron_may_name_an_assistant_its_principal_created(
    service: Service, tmp_path: Path
) -> None:
    async def scenario() -> None:
        alice, bob = service.client("alice"), service.client("bob")
        assistant = await alice.assistants.create(GRAPH_ID, name="nightly")
        thread = await alice.threads.create()
        cron: Any = await alice.crons.create_for_thread(
            thread["thread_id"], assistant["assistant_id"], schedule="@daily", input=say("a")
        )
        assert cron["assistant_id"] == assistant["assistant_id"]
        assert await alice.crons.count(assistant_id=assistant["assistant_id"]) == 1
        # It fires with that assistant.
        _make_due(tmp_path / "service.sqlite", cron["cron_id"])
        deadline = time.monotonic() + 20
        runs: Any = []
        while time.monotonic() < deadline:
            runs = await alice.runs.list(thread["thread_id"])
            if runs and runs[0]["status"] == "success":
                break
            await asyncio.sleep(0.3)
        assert [(r["assistant_id"], r["status"]) for r in runs] == [
            (assistant["assistant_id"], "success")
        ]
        # Another principal's assistant is not there for bob.
        with pytest.raises(NotFoundError):
            await bob.crons.create(assistant["assistant_id"], schedule="@daily")

    asyncio.run(scenario())
