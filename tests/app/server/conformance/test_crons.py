"""langgraph-sdk's CronClient against the service on PostgreSQL + Redis: every call, with what it
returns, and firings that run as runs (recorded in agent_runs, visible on the thread) and post
their signed webhook."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from agent_service.runs import engine
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError
from prometheus_client import REGISTRY

from tests.app.runs.test_webhooks import Receiver
from tests.app.server.conformance.sdk_calls import covers
from tests.app.server.conftest import fresh_database, make_settings
from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.service import Service, serve_in_thread
from tools.kit.servers import PostgresServer, RedisServer

# Real PostgreSQL (and Redis) servers: not part of the fast suite.
pytestmark = pytest.mark.integration

SECRET = "cron-webhook-secret-0123"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver("127.0.0.1")
    server = found.serve()
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture
def service(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> Iterator[tuple[Service, str]]:
    url = fresh_database(postgres_server)
    settings = make_settings(
        tmp_path,
        database_url=url,
        redis_url=redis_server.url,
        cron_poll_seconds=0.1,
        webhook_allowed_hosts="127.0.0.1",
        webhook_allow_http=True,
        webhook_allow_private_networks=True,
        webhook_signing_secret=SECRET,
        webhook_retry_initial_seconds=0.05,
    )
    with serve_in_thread(settings) as running:
        yield running, url


def _make_due(url: str, cron_id: str) -> None:
    """Bring the cron's next firing to now: a test cannot wait for the clock's next minute."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE agent_crons SET next_run_at = now() - interval '1 second' WHERE cron_id = %s",
            (cron_id,),
        )


def _runs_of(url: str, cron_id: str) -> list[tuple[str, str | None]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT status, thread_id FROM agent_runs WHERE metadata->>'cron_id' = %s",
            (cron_id,),
        ).fetchall()
    return [(str(status), thread_id) for status, thread_id in rows]


async def _until(check: Any, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        # Slow enough for the rate limit (RATE_LIMIT_PER_MINUTE) when `check` calls the API.
        await asyncio.sleep(0.3)
    raise AssertionError("timed out")


@covers("crons.create", "crons.search", "crons.count", "crons.update", "crons.delete")
def test_crons_create_search_count_update_delete(service: tuple[Service, str]) -> None:
    running, _ = service

    async def scenario() -> None:
        alice = running.client("alice")
        end = datetime.now(UTC) + timedelta(days=30)
        created: Any = await alice.crons.create(
            GRAPH_ID,
            schedule="15 6 * * 1-5",
            input=say("morning digest"),
            metadata={"team": "ops"},
            end_time=end,
            timezone="Europe/Paris",
            on_run_completed="keep",
        )
        assert uuid.UUID(created["cron_id"])
        assert created["schedule"] == "15 6 * * 1-5"
        assert created["timezone"] == "Europe/Paris"
        assert created["thread_id"] is None
        assert created["on_run_completed"] == "keep"
        assert created["enabled"] is True
        assert created["user_id"] == "alice"
        assert created["payload"]["input"] == say("morning digest")
        assert datetime.fromisoformat(created["end_time"]) == end.replace(
            microsecond=end.microsecond
        )
        first = datetime.fromisoformat(created["next_run_date"])
        local = first.astimezone(ZoneInfo("Europe/Paris"))
        assert (local.hour, local.minute) == (6, 15)
        assert local.weekday() < 5
        other: Any = await alice.crons.create(GRAPH_ID, schedule="@daily", enabled=False)
        assert other["next_run_date"] is None

        assert await alice.crons.count() == 2
        assert await alice.crons.count(metadata={"team": "ops"}) == 1
        assert await alice.crons.count(assistant_id="other_assistant") == 0
        found = await alice.crons.search(enabled=True)
        assert [c["cron_id"] for c in found] == [created["cron_id"]]
        ordered = await alice.crons.search(sort_by="created_at", sort_order="asc")
        assert [c["cron_id"] for c in ordered] == [created["cron_id"], other["cron_id"]]
        paged = await alice.crons.search(limit=1, offset=1, sort_by="created_at", sort_order="asc")
        assert [c["cron_id"] for c in paged] == [other["cron_id"]]
        picked = await alice.crons.search(metadata={"team": "ops"}, select=["cron_id", "schedule"])
        assert picked == [{"cron_id": created["cron_id"], "schedule": "15 6 * * 1-5"}]

        moved: Any = await alice.crons.update(
            created["cron_id"], schedule="0 12 * * *", end_time=None, metadata={"tier": "1"}
        )
        assert moved["schedule"] == "0 12 * * *"
        assert moved["end_time"] is None
        assert moved["metadata"] == {"team": "ops", "tier": "1"}
        noon = datetime.fromisoformat(moved["next_run_date"]).astimezone(ZoneInfo("Europe/Paris"))
        assert (noon.hour, noon.minute) == (12, 0)
        paused: Any = await alice.crons.update(created["cron_id"], enabled=False)
        assert paused["enabled"] is False
        assert paused["next_run_date"] is None
        resumed: Any = await alice.crons.update(created["cron_id"], enabled=True)
        assert resumed["next_run_date"] is not None
        with pytest.raises(UnprocessableEntityError, match="schedule"):
            await alice.crons.update(created["cron_id"], schedule="* * * * * *")

        await alice.crons.delete(created["cron_id"])
        assert await alice.crons.count() == 1
        with pytest.raises(NotFoundError):
            await alice.crons.delete(created["cron_id"])
        with pytest.raises(NotFoundError):
            await alice.crons.update(created["cron_id"], enabled=False)

    asyncio.run(scenario())


@covers("crons.create_for_thread")
def test_a_thread_cron_fires_once_as_a_recorded_run_and_posts_its_webhook(
    service: tuple[Service, str], receiver: Receiver
) -> None:
    running, url = service

    async def scenario() -> None:
        alice = running.client("alice")
        thread = await alice.threads.create()
        cron: Any = await alice.crons.create_for_thread(
            thread["thread_id"],
            GRAPH_ID,
            schedule="0 3 * * *",
            input=say("nightly"),
            webhook=f"http://127.0.0.1:{receiver.port}/done?token=t",
        )
        assert cron["thread_id"] == thread["thread_id"]
        assert cron["payload"]["multitask_strategy"] == "enqueue"
        assert await alice.crons.search(thread_id=thread["thread_id"]) == [cron]
        _make_due(url, cron["cron_id"])

        async def finished() -> bool:
            runs = _runs_of(url, cron["cron_id"])
            return bool(runs) and runs[0][0] == "success" and bool(receiver.received)

        await _until(finished)
        state: Any = await alice.threads.get_state(thread["thread_id"])
        assert [m["content"] for m in state["values"]["messages"]] == ["nightly", "echo: nightly"]
        assert _runs_of(url, cron["cron_id"]) == [("success", thread["thread_id"])]
        # Recorded like any other run: runs.list shows it, with where it came from.
        listed: Any = await alice.runs.list(thread["thread_id"])
        assert [(r["status"], r["metadata"]["cron_id"]) for r in listed] == [
            ("success", cron["cron_id"])
        ]
        # The webhook: the finished run, signed as Standard Webhooks verifies.
        (hook,) = receiver.received
        signed = f"{hook.headers['webhook-id']}.{hook.headers['webhook-timestamp']}.".encode()
        digest = hmac.new(SECRET.encode(), signed + hook.body, hashlib.sha256).digest()
        assert hook.headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()
        assert b'"status":"success"' in hook.body
        assert thread["thread_id"].encode() in hook.body
        # Fired once: later polls find nothing due (the next firing is tomorrow 03:00 UTC).
        await asyncio.sleep(0.5)
        assert len(_runs_of(url, cron["cron_id"])) == 1
        (after,) = await alice.crons.search()
        assert datetime.fromisoformat(str(after["next_run_date"])) > datetime.now(UTC)

    asyncio.run(scenario())


def _submitted() -> float:
    return (
        REGISTRY.get_sample_value("agent_service_cron_firings_total", {"outcome": "submitted"})
        or 0.0
    )


@covers("crons.create")
def test_a_stateless_cron_runs_each_firing_on_a_new_thread(
    service: tuple[Service, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    running, url = service
    # A finished stateless background run's thread stays a minute for runs.join; not here.
    monkeypatch.setattr(engine, "STATELESS_JOIN_SECONDS", 0.2)

    async def scenario() -> None:
        alice = running.client("alice")
        kept: Any = await alice.crons.create(
            GRAPH_ID, schedule="@hourly", input=say("kept"), on_run_completed="keep"
        )
        dropped: Any = await alice.crons.create(GRAPH_ID, schedule="@hourly", input=say("gone"))
        before = _submitted()
        _make_due(url, kept["cron_id"])
        _make_due(url, dropped["cron_id"])

        async def settled() -> bool:
            if _submitted() != before + 2 or _runs_of(url, dropped["cron_id"]):
                return False
            runs = _runs_of(url, kept["cron_id"])
            if [status for status, _ in runs] != ["success"]:
                return False
            threads = await alice.threads.search()
            return [t["thread_id"] for t in threads] == [runs[0][1]]

        await _until(settled)
        # "keep": the firing's thread stays with its result; "delete" (the default): the
        # thread and its run record went when the run ended.
        (thread,) = await alice.threads.search()
        state: Any = await alice.threads.get_state(thread["thread_id"])
        assert state["values"]["messages"][-1]["content"] == "echo: kept"
        assert _runs_of(url, dropped["cron_id"]) == []
        stored = {c["cron_id"]: c for c in await alice.crons.search()}
        for cron in (kept, dropped):
            upcoming = datetime.fromisoformat(str(stored[cron["cron_id"]]["next_run_date"]))
            assert upcoming > datetime.now(UTC)

    asyncio.run(scenario())
