"""The throw-away servers every integration test relies on behave like real ones."""

from __future__ import annotations

import psycopg
import pytest
import redis

from tools.kit.programs import MissingProgram, require_program
from tools.kit.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.integration


def test_missing_binary_fails_naming_make_tools() -> None:
    with pytest.raises(MissingProgram, match="make tools"):
        require_program("no-such-program-agent-platform")


def test_postgres_survives_an_immediate_stop(postgres_server_own: PostgresServer) -> None:
    url = postgres_server_own.create_database("survival")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v int)")
        conn.execute("INSERT INTO t VALUES (%s)", (42,))
    postgres_server_own.stop("immediate")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    postgres_server_own.start()
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT v FROM t").fetchone()
    assert row == (42,)


def test_redis_answers_and_dies_on_kill(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    assert client.ping()
    client.set("k", "v")
    assert client.get("k") == b"v"
    redis_server.stop(kill=True)
    with pytest.raises(redis.ConnectionError):
        client.ping()
