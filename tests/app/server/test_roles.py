"""Least privilege in PostgreSQL, against the real server: the migration, run by a user that
may create roles but is no superuser (as the migrator in RDS), creates the roles; each group
may do exactly its part."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from agent_service.persistence import roles
from agent_service.persistence.migrations import migrate_postgres
from psycopg import errors, sql

from tools.kit.servers import PostgresServer

pytestmark = pytest.mark.integration


def _login(server: PostgresServer, database: str, role: str) -> psycopg.Connection:
    # The test server trusts loopback: `user` alone selects the role.
    return psycopg.connect(
        f"postgresql://{role}@127.0.0.1:{server.port}/{database}", autocommit=True
    )


@pytest.fixture
def migrated(postgres_server: PostgresServer) -> tuple[PostgresServer, str]:
    """A database owned by a CREATEROLE bootstrap user, migrated by that user."""
    bootstrap = f"boot_{uuid.uuid4().hex[:8]}"
    database = f"roles_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(bootstrap)))
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(bootstrap)
            )
        )
    # The bootstrap's other superuser step (on RDS: the master user's): pgvector.
    with psycopg.connect(postgres_server.url(database), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    url = f"postgresql://{bootstrap}@127.0.0.1:{postgres_server.port}/{database}"
    asyncio.run(migrate_postgres(url))
    # Twice: the step is idempotent.
    assert asyncio.run(migrate_postgres(url)) == 0
    return postgres_server, database


def test_the_tables_belong_to_the_owner_role(migrated: tuple[PostgresServer, str]) -> None:
    server, database = migrated
    with _login(server, database, "postgres") as conn:
        owners = {
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
        logins = {
            row[0]: row[1]
            for row in conn.execute(
                "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY(%s)",
                ([*roles.GROUPS, *roles.LOGINS],),
            ).fetchall()
        }
    assert owners == {roles.OWNER}
    assert {name for name, can in logins.items() if can} == set(roles.LOGINS)
    assert {name for name, can in logins.items() if not can} == set(roles.GROUPS)


def test_the_service_reads_and_writes_rows_but_changes_no_schema(
    migrated: tuple[PostgresServer, str],
) -> None:
    server, database = migrated
    with _login(server, database, roles.APP) as conn:
        conn.execute("INSERT INTO store (prefix, key, value) VALUES ('p', 'k', '{}')")
        conn.execute("UPDATE store SET value = '{\"a\": 1}' WHERE prefix = 'p'")
        conn.execute("DELETE FROM store WHERE prefix = 'p'")
        for statement in (
            "CREATE TABLE intruder (id int)",
            "DROP TABLE store",
            "ALTER TABLE store ADD COLUMN x int",
            "TRUNCATE store",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)


def test_backup_only_reads_and_retention_only_reads_and_deletes(
    migrated: tuple[PostgresServer, str],
) -> None:
    server, database = migrated
    with _login(server, database, roles.BACKUP) as conn:
        conn.execute("SELECT count(*) FROM store").fetchone()
        for statement in (
            "INSERT INTO store (prefix, key, value) VALUES ('p', 'k', '{}')",
            "DELETE FROM store",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)
    with _login(server, database, roles.RETENTION) as conn:
        conn.execute("DELETE FROM store WHERE prefix = 'nothing'")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("INSERT INTO store (prefix, key, value) VALUES ('p', 'k', '{}')")


def test_a_migrator_that_may_not_create_roles_is_told_what_to_do(
    postgres_server_own: PostgresServer,
) -> None:
    """On a cluster without the roles, a user without CREATEROLE gets the bootstrap named,
    not a bare permission error."""
    plain = "plain_migrator"
    with psycopg.connect(postgres_server_own.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(plain)))
        conn.execute(sql.SQL("CREATE DATABASE agent OWNER {}").format(sql.Identifier(plain)))
    url = f"postgresql://{plain}@127.0.0.1:{postgres_server_own.port}/agent"
    with pytest.raises(roles.MissingRoles, match="CREATEROLE"):
        asyncio.run(migrate_postgres(url))


def test_a_migrator_that_may_not_create_the_vector_extension_is_told_what_to_do(
    postgres_server: PostgresServer,
) -> None:
    """pgvector is no trusted extension: a migrator without superuser (RDS: rds_superuser)
    gets the one statement to run named, and STORE_EMBEDDINGS=none as the alternative."""
    migrator = f"boot_{uuid.uuid4().hex[:8]}"
    database = f"novec_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(migrator)))
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(migrator)
            )
        )
    url = f"postgresql://{migrator}@127.0.0.1:{postgres_server.port}/{database}"
    with pytest.raises(roles.MissingExtension, match="CREATE EXTENSION vector"):
        asyncio.run(migrate_postgres(url))
    # Without semantic search the same migrator needs no extension at all.
    asyncio.run(migrate_postgres(url, embedding_dims=None))
    with psycopg.connect(postgres_server.url(database), autocommit=True) as conn:
        vector = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
        assert vector.fetchone() is None
