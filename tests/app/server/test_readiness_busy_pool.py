"""Readiness on a busy pool: every pooled connection held (requests blocked on a table lock taken
from outside the service) keeps the pod ready, with `busy` in the database check, because the
database still answers; and /ready's own budget fits the chart's probe timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from agent_service.api.readiness import READINESS_BUDGET_SECONDS

from tests.app.server.conftest import fresh_database, make_settings
from tests.app.server.service import Service, serve_in_thread
from tests.chart.support import render_env
from tools.kit.servers import PostgresServer

pytestmark = pytest.mark.integration

POOL_MAX = 2


@pytest.fixture
def busy_service(tmp_path: Path, postgres_server: PostgresServer) -> Iterator[tuple[Service, str]]:
    url = fresh_database(postgres_server)
    settings = make_settings(
        tmp_path,
        database_url=url,
        database_pool_min=POOL_MAX,
        database_pool_max=POOL_MAX,
        database_pool_timeout_seconds=20,
    )
    with serve_in_thread(settings) as service:
        yield service, url


def test_a_busy_pool_keeps_the_pod_ready(busy_service: tuple[Service, str]) -> None:
    service, url = busy_service
    assert httpx.get(f"{service.url}/ready", timeout=10).status_code == 200
    with psycopg.connect(url, autocommit=False) as blocker:
        blocker.execute("LOCK TABLE agent_threads IN ACCESS EXCLUSIVE MODE")
        # Each request holds a pooled connection while it waits for the lock.
        holders = [
            threading.Thread(
                target=lambda: service.http("alice").post("/threads", json={}), daemon=True
            )
            for _ in range(POOL_MAX + 1)
        ]
        for holder in holders:
            holder.start()
        time.sleep(1.0)
        ready = httpx.get(f"{service.url}/ready", timeout=10)
        blocker.rollback()  # the lock goes; the held requests finish
    for holder in holders:
        holder.join(30)
    body = ready.json()
    assert ready.status_code == 200, body
    assert body["checks"]["database"]["busy"] is True
    assert "every pooled connection is busy" in body["checks"]["database"]["detail"]
    assert (
        httpx.get(f"{service.url}/ready", timeout=10).json()["checks"]["database"].get("busy")
        is None
    )


def test_the_readiness_budget_fits_the_probe_timeout() -> None:
    deployment = render_env("canary").one("Deployment")
    (agent,) = deployment["spec"]["template"]["spec"]["containers"]
    probe = agent["readinessProbe"]
    assert probe["timeoutSeconds"] > READINESS_BUDGET_SECONDS
    # One slow or failed answer does not take the pod out.
    assert probe["failureThreshold"] >= 3
