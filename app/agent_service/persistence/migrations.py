"""Create or upgrade every table the service uses: LangGraph's checkpointer and store, then the
service's own. Idempotent; on PostgreSQL an advisory lock keeps two migration Jobs (a retried
hook, two releases) from racing each other."""

from __future__ import annotations

from typing import Any, cast

import aiosqlite
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.store.base import IndexConfig
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph.store.sqlite.aio import AsyncSqliteStore
from psycopg import AsyncConnection, sql

from agent_service.core.principal import MEMORY_INDEX_FIELDS, MEMORY_NAMESPACE, USER_ROOT
from agent_service.embeddings import DEFAULT_FIELDS, LOCAL_DIMS, LocalEmbeddings
from agent_service.persistence import roles
from agent_service.persistence.backends import Persistence
from agent_service.persistence.pool import CONNECTION_KWARGS
from agent_service.persistence.schema import (
    POSTGRES_MIGRATIONS,
    POSTGRES_VERSION_TABLE,
    SCHEMA_VERSION,
    SQLITE_MIGRATIONS,
    SQLITE_VERSION_TABLE,
)
from agent_service.persistence.sqlite_tables import SqliteTables

# An arbitrary, fixed key for pg_advisory_lock: "agent-service migrate".
_MIGRATION_LOCK_KEY = 0x61676E74


def _setup_index(dims: int | None) -> IndexConfig | None:
    # What the store's setup reads: the vector column's size. Nothing is embedded here, and
    # the local model is never loaded (LocalEmbeddings loads on first use).
    if dims is None:
        return None
    return IndexConfig(dims=dims, embed=LocalEmbeddings(), fields=list(DEFAULT_FIELDS))


async def migrate_postgres(
    conninfo: str, *, connect_timeout: int = 10, embedding_dims: int | None = LOCAL_DIMS
) -> int:
    """Migrate over one dedicated connection (a one-shot Job needs no pool); returns the
    number of service migrations applied. `embedding_dims` (`embeddings.embedding_dims`):
    the store's vector column, None without semantic search."""
    conn = await AsyncConnection.connect(
        conninfo, **{**CONNECTION_KWARGS, "connect_timeout": connect_timeout}
    )
    async with conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
        try:
            await roles.ensure_roles(conn)
            # A no-op with a warning unless the migrating user may grant on the schema (its
            # owner, a superuser): the bootstrap grants it once otherwise.
            await conn.execute(
                sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(
                    sql.Identifier(roles.SCHEMA), sql.Identifier(roles.OWNER)
                )
            )
            await roles.take_ownership(conn)
            if embedding_dims is not None:
                await roles.ensure_vector_extension(conn)
            # Everything below is created by, and belongs to, the owner role.
            await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(roles.OWNER)))
            applied = await _migrate_schema(conn, embedding_dims)
            await roles.grant_privileges(conn)
            await conn.execute("RESET ROLE")
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))


class EmbeddingDimsMismatch(Exception):
    """The store's vector column was made for another embedding size than configured."""


async def _check_vector_dims(conn: AsyncConnection[Any], dims: int) -> None:
    # pgvector keeps a vector column's dimensions as its type modifier.
    cur = await conn.execute(
        "SELECT a.atttypmod AS dims FROM pg_attribute a WHERE a.attrelid = "
        "to_regclass('store_vectors') AND a.attname = 'embedding'"
    )
    row = await cur.fetchone()
    if row is not None and int(row["dims"]) != dims:
        raise EmbeddingDimsMismatch(
            f"the store's vectors have {row['dims']} dimensions but STORE_EMBEDDINGS gives "
            f"{dims}: keep the embeddings the database was migrated with (changing them needs "
            "the store_vectors table re-made and every item re-embedded)"
        )


async def _migrate_schema(conn: AsyncConnection[Any], embedding_dims: int | None) -> int:
    await AsyncPostgresSaver(conn).setup()
    if embedding_dims is not None:
        await _check_vector_dims(conn, embedding_dims)
    await AsyncPostgresStore(conn, index=cast(Any, _setup_index(embedding_dims))).setup()
    await conn.execute(POSTGRES_VERSION_TABLE)
    cur = await conn.execute("SELECT coalesce(max(version), 0) AS v FROM agent_schema_version")
    row = await cur.fetchone()
    current = 0 if row is None else int(row["v"])
    applied = 0
    for version in range(current + 1, SCHEMA_VERSION + 1):
        async with conn.transaction():
            await conn.execute(POSTGRES_MIGRATIONS[version - 1])
            await conn.execute("INSERT INTO agent_schema_version (version) VALUES (%s)", (version,))
        applied += 1
    return applied


async def migrate_sqlite(persistence: Persistence) -> int:
    """Migrate the embedded file through the connections the process already holds."""
    await cast(AsyncSqliteSaver, persistence.checkpointer).setup()
    await cast(AsyncSqliteStore, persistence.store).setup()
    tables = persistence.tables
    assert isinstance(tables, SqliteTables)
    conn: aiosqlite.Connection = tables.connection
    await conn.execute(SQLITE_VERSION_TABLE)
    cur = await conn.execute("SELECT coalesce(max(version), 0) FROM agent_schema_version")
    row = await cur.fetchone()
    current = 0 if row is None else int(row[0])
    applied = 0
    for version in range(current + 1, SCHEMA_VERSION + 1):
        await conn.executescript(
            "BEGIN IMMEDIATE;\n"
            + SQLITE_MIGRATIONS[version - 1]
            + f"\nINSERT INTO agent_schema_version (version, applied_at) "
            f"VALUES ({int(version)}, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));\nCOMMIT;"
        )
        applied += 1
    return applied


# Memories without a vector: the copies the store-layout migration (schema.py, issue 19) made
# from the old layout (items a client put into its ["memories"] without `text` are skipped by
# the `text` condition). Keyset pages, so an item the store declines to embed is not selected
# again.
_UNEMBEDDED_MEMORIES = """
    SELECT s.prefix, s.key, s.value, s.ttl_minutes FROM store s
    WHERE s.prefix LIKE %s AND (s.prefix, s.key) > (%s, %s)
      AND s.value->>'text' IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM store_vectors v WHERE v.prefix = s.prefix AND v.key = s.key)
    ORDER BY s.prefix, s.key
    LIMIT %s
"""
_EMBED_BATCH = 100


async def embed_memories(conninfo: str, index: IndexConfig) -> int:
    """Embed the users' memories that have no vector yet, through the store (so its index
    configuration decides how); returns how many. Cheap when there are none: `migrate` runs
    it after every migration."""
    conn = await AsyncConnection.connect(conninfo, **CONNECTION_KWARGS)
    async with conn:
        store = AsyncPostgresStore(conn, index=cast(Any, index))
        done, after = 0, ("", "")
        # The user's label is the pattern's one wildcard (the fixed labels hold no "_" or "%").
        pattern = f"{USER_ROOT}.%.{MEMORY_NAMESPACE}"
        while True:
            cur = await conn.execute(_UNEMBEDDED_MEMORIES, (pattern, *after, _EMBED_BATCH))
            rows = await cur.fetchall()
            if not rows:
                return done
            for row in rows:
                await store.aput(
                    tuple(str(row["prefix"]).split(".")),
                    str(row["key"]),
                    row["value"],
                    index=MEMORY_INDEX_FIELDS,
                    ttl=row["ttl_minutes"],
                )
            done += len(rows)
            after = (str(rows[-1]["prefix"]), str(rows[-1]["key"]))
