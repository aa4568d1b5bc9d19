"""Fixtures shared by every test package: real PostgreSQL and Redis on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tools.kit.servers import PostgresServer, RedisServer

# The smoke suite checks a running environment (`make smoke`, or a pod); it is collected only
# when told where that environment is. tests/local runs it against an environment it starts.
collect_ignore = [] if os.environ.get("SMOKE_ENV_FILE") else ["smoke"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the session; tests that stop it use `postgres_server_own`."""
    server = PostgresServer().init().start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def postgres_server_own() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for one test, which may stop and restart it."""
    server = PostgresServer().init().start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis server for one test, which may kill it."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.destroy()
