"""Run the service for a test: in a thread (fast, injectable graphs) or as a subprocess (for
restarts and signals), always a real uvicorn on a free loopback port."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from agent_service.server.app import GraphSourceFactory, create_app
from agent_service.settings import Settings
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.app.server.graphs import echo_graph_source
from tools.kit import launcher
from tools.kit.ports import free_port
from tools.kit.process import Started, started
from tools.kit.process import wait_until_ready as wait_until_ready
from tools.kit.programs import REPO_ROOT

KEYS = {
    "alice": "alice-key-0123456789abcdef",
    "bob": "bob-key-0123456789abcdef0",
    # Given the approver role (only) by the tests of approvals.
    "carol": "carol-key-0123456789abcdef",
}
STARTUP_TIMEOUT = 60.0


def api_keys_json() -> str:
    import json

    return json.dumps(KEYS)


@dataclass
class Service:
    url: str

    def client(self, principal: str = "alice") -> LangGraphClient:
        return get_client(url=self.url, api_key=KEYS[principal])

    def http(self, principal: str | None = "alice") -> httpx.Client:
        headers = {} if principal is None else {"X-API-Key": KEYS[principal]}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@contextmanager
def serve_in_thread(
    settings: Settings, graph_source: GraphSourceFactory = echo_graph_source
) -> Iterator[Service]:
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, graph_source=graph_source),
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        server.should_exit = True
        thread.join(10)
        raise RuntimeError("the service did not start (see the log above)")
    try:
        yield Service(url=f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(30)


def service_env(**settings: Any) -> dict[str, str]:
    """A clean environment for a service subprocess: only what the test sets."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(REPO_ROOT),
        "SECRETS_DIR": "/nonexistent",
    }
    env.update({key.upper(): str(value) for key, value in settings.items()})
    return env


# A service subprocess as the kit starts it (url, log(), terminate()).
ServiceProcess = Started
ECHO_LAUNCHER = launcher.command("tests.app.server.graphs:echo_graph_source")


@contextmanager
def serve_in_process(
    env: dict[str, str], log_path: Path, argv: list[str] | None = None
) -> Iterator[ServiceProcess]:
    """Start the service in a subprocess: `argv` (default: the kit's launcher with the echo
    graph), with HOST/PORT set in `env`; not waited for (`wait_until_ready`), killed on exit."""
    port = free_port()
    env = {**env, "HOST": "127.0.0.1", "PORT": str(port)}
    with started(
        "the service",
        argv or ECHO_LAUNCHER,
        env,
        url=f"http://127.0.0.1:{port}",
        log=log_path,
        ready_path=None,
        stop_timeout=0,
    ) as running:
        yield running
