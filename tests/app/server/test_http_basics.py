"""CORS from settings, /metrics open or behind a key, liveness independent of the database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.app.server.conftest import make_settings
from tests.app.server.service import KEYS, Service, serve_in_thread

pytestmark = pytest.mark.integration


@pytest.fixture
def cors_service(tmp_path: Path) -> Iterator[Service]:
    settings = make_settings(
        tmp_path, cors_origins="https://app.example", metrics_require_auth=True
    )
    with serve_in_thread(settings) as service:
        yield service


def test_cors_allows_only_configured_origins(cors_service: Service) -> None:
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "x-api-key,content-type",
    }
    allowed = httpx.options(
        f"{cors_service.url}/threads", headers={"origin": "https://app.example", **preflight}
    )
    denied = httpx.options(
        f"{cors_service.url}/threads", headers={"origin": "https://evil.example", **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in denied.headers
    simple = httpx.get(
        f"{cors_service.url}/ok",
        headers={"origin": "https://app.example", "x-api-key": KEYS["alice"]},
    )
    assert simple.headers["access-control-allow-origin"] == "https://app.example"


def test_metrics_open_by_default(sqlite_service: Service) -> None:
    response = httpx.get(f"{sqlite_service.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE" in response.text


def test_metrics_behind_a_key_when_configured(cors_service: Service) -> None:
    assert httpx.get(f"{cors_service.url}/metrics").status_code == 401
    keyed = httpx.get(f"{cors_service.url}/metrics", headers={"x-api-key": KEYS["alice"]})
    assert keyed.status_code == 200
    assert httpx.get(f"{cors_service.url}/health").json() == {"status": "alive"}
