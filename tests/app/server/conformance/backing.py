"""The service as the conformance tests drive it: the official SDK against PostgreSQL + Redis,
one fresh migrated database and one Redis per test module (the modules' tests use their own
threads and assistants, so they share a service)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent_service.server.app import GraphSourceFactory

from tests.app.server.conftest import fresh_database, make_settings
from tests.app.server.graphs import echo_graph_source
from tests.app.server.service import Service, serve_in_thread
from tools.kit.servers import PostgresServer, RedisServer


@contextmanager
def pg_redis_service(
    tmp_path: Path,
    postgres_server: PostgresServer,
    graph_source: GraphSourceFactory = echo_graph_source,
    **settings: Any,
) -> Iterator[tuple[Service, str]]:
    """The service on a fresh database and its own Redis; yields it and the database URL."""
    redis = RedisServer().start()
    try:
        url = fresh_database(postgres_server)
        config = make_settings(tmp_path, database_url=url, redis_url=redis.url, **settings)
        with serve_in_thread(config, graph_source=graph_source) as service:
            yield service, url
    finally:
        redis.destroy()
