"""Fixtures: the service on SQLite or on a fresh, migrated PostgreSQL database, served by a
real uvicorn on loopback."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_service.persistence.migrations import migrate_postgres
from agent_service.server.logging_setup import configure_logging
from agent_service.settings import Settings

from tests.app.server.service import KEYS, Service, serve_in_thread
from tools.kit.servers import PostgresServer

configure_logging("WARNING")


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "api_keys": KEYS,
        "sqlite_path": tmp_path / "service.sqlite",
        "log_level": "WARNING",
        "request_timeout_seconds": 30,
    }
    values.update(overrides)
    return Settings(**values)


def fresh_database(server: PostgresServer) -> str:
    url = server.create_database(f"svc_{uuid.uuid4().hex[:12]}")
    asyncio.run(migrate_postgres(url))
    return url


@pytest.fixture
def sqlite_service(tmp_path: Path) -> Iterator[Service]:
    with serve_in_thread(make_settings(tmp_path)) as service:
        yield service


@pytest.fixture
def pg_service(tmp_path: Path, postgres_server: PostgresServer) -> Iterator[Service]:
    url = fresh_database(postgres_server)
    with serve_in_thread(make_settings(tmp_path, database_url=url)) as service:
        yield service
