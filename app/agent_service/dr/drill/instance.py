"""The restored side: its database next to the source's, and a service instance on it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from agent_service.dr.errors import DrError

READY_TIMEOUT = 120.0
STOP_TIMEOUT = 40.0


def with_database(url: str, name: str) -> str:
    """`url` (postgresql://…, as DATABASE_URL takes it) naming database `name` instead."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def drop_database(admin_url: str, password: str | None, name: str) -> None:
    """Drop `name` on the server of `admin_url`, closing any session still on it."""
    admin = make_conninfo(admin_url, password=password) if password else admin_url
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if process.poll() is not None:
            raise DrError(f"the restored instance exited {process.returncode}; see {log_path}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise DrError(
                f"the restored instance is not ready after {READY_TIMEOUT:.0f} s; see {log_path}"
            )
        time.sleep(0.05)


@contextmanager
def service_on(service_env: Mapping[str, str], database_url: str, log_path: Path) -> Iterator[str]:
    """`agent-service serve` on `database_url` and a free loopback port; yields its URL once
    /ready answers 200, stops it on exit."""
    port = free_port()
    env = {
        **service_env,
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": "1",
    }
    # Its own in-process cache and metrics: nothing shared with the source instance.
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("REDIS_URL", None)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent_service.cli", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, url, log_path)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
