"""PostgreSQL going away answers 503 quickly and heals without a restart; Redis going away
changes nothing the client can see."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.app.server.conftest import fresh_database, make_settings
from tests.app.server.graphs import GRAPH_ID
from tests.app.server.service import Service, serve_in_thread
from tools.kit.servers import PostgresServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SAY: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}
# Generous: the point is that nothing hangs, and a hang would need longer than this.
CLIENT_TIMEOUT = 30.0


def _ready_until(service: Service, status: int, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        response = httpx.get(f"{service.url}/ready", timeout=CLIENT_TIMEOUT)
        body = response.json()
        if response.status_code == status:
            return body
        time.sleep(0.2)
    raise AssertionError(f"/ready never answered {status}: {body}")


def test_postgres_down_mid_request_then_back(
    tmp_path: Path, postgres_server_own: PostgresServer
) -> None:
    url = fresh_database(postgres_server_own)
    settings = make_settings(tmp_path, database_url=url, database_pool_timeout_seconds=2)
    with serve_in_thread(settings) as service:

        async def scenario() -> None:
            client = service.client()
            thread = await client.threads.create()
            slow = asyncio.create_task(
                client.runs.wait(
                    thread["thread_id"],
                    GRAPH_ID,
                    input=SAY,
                    config={"configurable": {"delay": 1.5}},
                )
            )
            for _ in range(200):
                if (await client.threads.get(thread["thread_id"]))["status"] == "busy":
                    break
                await asyncio.sleep(0.02)
            postgres_server_own.stop("immediate")
            with pytest.raises(httpx.HTTPStatusError) as during:
                await asyncio.wait_for(slow, CLIENT_TIMEOUT)
            assert during.value.response.status_code == 503
            assert during.value.response.json()["error"] == "database_unavailable"

        asyncio.run(scenario())

        with service.http() as http:
            after = http.post("/threads", json={})
        assert after.status_code == 503
        assert after.json()["error"] == "database_unavailable"
        assert after.headers["retry-after"] == "5"
        body = _ready_until(service, 503)
        checks = body["checks"]
        assert isinstance(checks, dict)
        assert checks["database"]["ok"] is False
        # The reason, not just "down": the refused connection is named.
        assert checks["database"]["detail"].startswith("the database is unavailable: ")
        assert "Connection refused" in checks["database"]["detail"]
        assert checks["checkpointer"]["detail"] == "not checked: the database is unavailable"
        assert checks["checkpointer"]["ok"] is False

        postgres_server_own.start()
        _ready_until(service, 200)

        async def recovered() -> None:
            client = service.client()
            thread = await client.threads.create()
            result = await client.runs.wait(thread["thread_id"], GRAPH_ID, input=SAY)
            assert isinstance(result, dict)
            assert result["messages"][-1]["content"] == "echo: hi"

        asyncio.run(recovered())


def test_ready_reports_an_unmigrated_schema(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.create_database("never_migrated")
    with serve_in_thread(make_settings(tmp_path, database_url=url)) as service:
        response = httpx.get(f"{service.url}/ready", timeout=CLIENT_TIMEOUT)
        with service.http() as http:
            attempt = http.post("/threads", json={})
    assert response.status_code == 503
    detail = response.json()["checks"]["database"]["detail"]
    assert detail.startswith("schema not migrated: missing tables agent_threads")
    assert "agent-service migrate" in detail
    assert attempt.status_code == 503
    assert "not migrated" in attempt.json()["detail"]


def test_ready_reports_a_schema_without_the_owner_check_function(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """A database at schema version 5 (a backup restored from before migration 6, or a
    migration Job that did not run) has every table, but every checkpoint write of a run needs
    `agent_require_thread_owner`: /ready must say the schema is not migrated, not serve runs
    that all fail."""
    url = fresh_database(postgres_server)

    async def back_to_version_5() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("DROP FUNCTION agent_require_thread_owner(text, text)")
            await conn.execute("DELETE FROM agent_schema_version WHERE version = 6")

    asyncio.run(back_to_version_5())
    with serve_in_thread(make_settings(tmp_path, database_url=url)) as service:
        response = httpx.get(f"{service.url}/ready", timeout=CLIENT_TIMEOUT)
    assert response.status_code == 503
    detail = response.json()["checks"]["database"]["detail"]
    assert detail.startswith("schema not migrated: missing ")
    assert "agent_require_thread_owner" in detail


def test_redis_down_keeps_serving(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    url = fresh_database(postgres_server)
    settings = make_settings(tmp_path, database_url=url, redis_url=redis_server.url)
    with serve_in_thread(settings) as service:
        ready = httpx.get(f"{service.url}/ready", timeout=CLIENT_TIMEOUT).json()
        assert ready["checks"]["cache"] == {"ok": True, "detail": "redis reachable"}

        async def run_once() -> None:
            client = service.client()
            thread = await client.threads.create()
            result = await client.runs.wait(thread["thread_id"], GRAPH_ID, input=SAY)
            assert isinstance(result, dict)
            assert result["messages"][-1]["content"] == "echo: hi"

        asyncio.run(run_once())
        redis_server.stop(kill=True)
        asyncio.run(run_once())
        with service.http() as http:
            assert all(http.get("/ok").status_code == 200 for _ in range(5))
        degraded = httpx.get(f"{service.url}/ready", timeout=CLIENT_TIMEOUT)
        assert degraded.status_code == 200
        cache = degraded.json()["checks"]["cache"]
        assert cache["degraded"] is True
        assert "fall back to in-process" in cache["detail"]
