"""The service as the drills run it: a real `agent-service serve` process (or the kit's launcher
with the echo graph, for drills that need a run of known length), tuned so that only the
failure under test limits it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.app.server.service import (
    ECHO_LAUNCHER,
    KEYS,
    ServiceProcess,
    api_keys_json,
    serve_in_process,
    service_env,
    wait_until_ready,
)

SERVE = [sys.executable, "-m", "agent_service.cli", "serve"]
LAUNCHER = ECHO_LAUNCHER
REQUEST_TIMEOUT = 10


def drill_env(tmp_path: Path, **settings: Any) -> dict[str, str]:
    defaults: dict[str, Any] = {
        "api_keys": api_keys_json(),
        # Limits that would otherwise shape the load are lifted: the drill is about failures.
        "rate_limit_per_minute": 10_000_000,
        "user_model_calls_per_day": 10_000_000,
        # The closed loop spreads runs over threads unevenly (a fast worker takes more turns):
        # main_agent's summary would replace a busy thread's early turns, which the drills
        # check for by message. Summarising is covered by the graph tests.
        "summarize_after_messages": 1_000_000,
        "request_timeout_seconds": REQUEST_TIMEOUT,
        "database_pool_timeout_seconds": 2,
        "log_level": "WARNING",
        "prometheus_multiproc_dir": tmp_path / "prometheus",
    }
    return service_env(**{**defaults, **settings})


@contextmanager
def running(env: dict[str, str], log: Path, argv: list[str] = SERVE) -> Iterator[ServiceProcess]:
    with serve_in_process(env, log, argv=argv) as process:
        wait_until_ready(process.url)
        yield process


def client(process: ServiceProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=process.url,
        headers={"X-API-Key": KEYS["alice"]},
        limits=httpx.Limits(max_connections=128, max_keepalive_connections=64),
        timeout=60,
    )
