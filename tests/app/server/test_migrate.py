"""`agent-service migrate`: idempotent, and one clear line when it cannot run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from agent_service.persistence.schema import SCHEMA_VERSION

from tests.app.server.service import service_env
from tools.kit.ports import free_port
from tools.kit.servers import PostgresServer

pytestmark = pytest.mark.integration

AGENT_SERVICE = str(Path(sys.executable).parent / "agent-service")


def _migrate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AGENT_SERVICE, "migrate"], env=env, capture_output=True, text=True, timeout=120
    )


def test_migrate_postgres_twice(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("migrate_twice")
    first = _migrate(service_env(database_url=url))
    second = _migrate(service_env(database_url=url))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (
        f"migrate: postgres schema at version {SCHEMA_VERSION} "
        f"({SCHEMA_VERSION} service migration(s) applied)"
    )
    assert second.stdout.strip().endswith("(0 service migration(s) applied)")
    with psycopg.connect(url) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert {"agent_threads", "agent_runs", "agent_audit_log", "checkpoints", "store"} <= tables


def test_migrate_sqlite(tmp_path: Path) -> None:
    result = _migrate(service_env(sqlite_path=tmp_path / "embedded.sqlite"))
    assert result.returncode == 0, result.stderr
    assert "sqlite" in result.stdout
    assert (tmp_path / "embedded.sqlite").exists()


def test_migrate_fails_with_one_line() -> None:
    unreachable = f"postgresql://agent@127.0.0.1:{free_port()}/agent"
    result = _migrate(service_env(database_url=unreachable, database_password="s3cret-pass"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("migrate: cannot migrate the database:")
    assert "s3cret-pass" not in result.stderr
    bad = _migrate(service_env(database_url="mysql://nope"))
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "migrate: invalid settings: DATABASE_URL: Value error, must start with postgresql:// "
        "(or leave it unset for SQLite)"
    )


def test_migrate_refuses_embeddings_of_another_size(postgres_server: PostgresServer) -> None:
    """The vector column keeps the size it was made with: switching STORE_EMBEDDINGS to a model
    of another size is refused by name, not left to fail on every put."""
    url = postgres_server.create_database("migrate_dims")
    assert _migrate(service_env(database_url=url)).returncode == 0
    other = _migrate(
        service_env(
            database_url=url,
            store_embeddings="openai:text-embedding-3-small",
            store_embedding_dims="1536",
        )
    )
    assert other.returncode == 1
    assert "384 dimensions but STORE_EMBEDDINGS gives 1536" in other.stderr
