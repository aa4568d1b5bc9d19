"""The restored side: its database next to the source's, and a service instance on it."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from agent_service.dr.errors import DrError
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tools.kit.ports import free_port
from tools.kit.process import NotReady, started

READY_TIMEOUT = 120.0


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


@contextmanager
def service_on(
    service_env: Mapping[str, str],
    database_url: str,
    log_path: Path,
    *,
    redis_url: str | None = None,
) -> Iterator[str]:
    """`agent-service serve` on `database_url` (and `redis_url`, else an in-process cache) and
    a free loopback port; yields its URL once /ready answers 200, stops it on exit."""
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
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    command = [sys.executable, "-m", "agent_service.cli", "serve"]
    url = f"http://127.0.0.1:{port}"
    try:
        with started(
            "the restored instance", command, env, url=url, log=log_path, timeout=READY_TIMEOUT
        ):
            yield url
    except NotReady as exc:
        raise DrError(str(exc)) from None
