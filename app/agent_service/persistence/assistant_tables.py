"""Assistants created through the API, on PostgreSQL and on SQLite (mixed into the service
tables of each backend). `agent_assistants` holds each assistant's owner and latest version;
`agent_assistant_versions` every version's fields. Parameterised SQL only."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import aiosqlite
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from agent_service.persistence.pool import Pool
from agent_service.persistence.records import (
    MAX_ASSISTANT_VERSIONS,
    AssistantExistsError,
    AssistantFields,
    AssistantRecord,
    AssistantVersionLimitError,
)

_COLUMNS = (
    "a.assistant_id, a.owner, v.version, v.graph_id, v.name, v.description, v.config, "
    "v.context, v.metadata, a.created_at"
)
_LATEST = (
    "FROM agent_assistants AS a JOIN agent_assistant_versions AS v "
    "ON v.assistant_id = a.assistant_id AND v.version = a.version"
)
# A version's own time is its `updated_at`; the latest's is the assistant's.
_LATEST_SELECT = f"SELECT {_COLUMNS}, a.updated_at {_LATEST}"
_VERSIONS_SELECT = (
    f"SELECT {_COLUMNS}, v.created_at AS updated_at FROM agent_assistants AS a "  # noqa: S608
    "JOIN agent_assistant_versions AS v ON v.assistant_id = a.assistant_id"
)
_INSERT_VERSION = (
    "INSERT INTO agent_assistant_versions (assistant_id, version, graph_id, name, description, "
    "config, context, metadata{extra}) VALUES ({marks})"
)


def _record(row: Any, loads: Any, stamp: Any) -> AssistantRecord:
    return AssistantRecord(
        assistant_id=row["assistant_id"],
        owner=row["owner"],
        version=int(row["version"]),
        fields=AssistantFields(
            graph_id=row["graph_id"],
            name=row["name"],
            description=row["description"],
            config=loads(row["config"]),
            context=loads(row["context"]),
            metadata=loads(row["metadata"]),
        ),
        created_at=stamp(row["created_at"]),
        updated_at=stamp(row["updated_at"]),
    )


def _pg(row: DictRow) -> AssistantRecord:
    return _record(row, dict, lambda value: value)


def _sqlite(row: aiosqlite.Row) -> AssistantRecord:
    return _record(row, json.loads, datetime.fromisoformat)


class PostgresAssistants:
    _pool: Pool

    async def create_assistant(
        self, assistant_id: str, owner: str, fields: AssistantFields
    ) -> AssistantRecord:
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO agent_assistants (assistant_id, owner, version) VALUES (%s, %s, 1) "
                "ON CONFLICT (assistant_id) DO NOTHING RETURNING assistant_id",
                (assistant_id, owner),
            )
            if await cur.fetchone() is None:
                raise AssistantExistsError(assistant_id)
            await self._insert_version(conn, assistant_id, 1, fields)
        created = await self.get_assistant(assistant_id, owner)
        assert created is not None, "created in the transaction above"
        return created

    @staticmethod
    async def _insert_version(
        conn: Any, assistant_id: str, version: int, fields: AssistantFields
    ) -> None:
        await conn.execute(
            _INSERT_VERSION.format(extra="", marks=", ".join(["%s"] * 8)),
            (
                assistant_id,
                version,
                fields.graph_id,
                fields.name,
                fields.description,
                Jsonb(fields.config),
                Jsonb(fields.context),
                Jsonb(fields.metadata),
            ),
        )

    async def get_assistant(self, assistant_id: str, owner: str) -> AssistantRecord | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"{_LATEST_SELECT} WHERE a.assistant_id = %s AND a.owner = %s",
                (assistant_id, owner),
            )
            row = await cur.fetchone()
        return None if row is None else _pg(row)

    async def owner_assistants(self, owner: str) -> list[AssistantRecord]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"{_LATEST_SELECT} WHERE a.owner = %s ORDER BY a.created_at DESC", (owner,)
            )
            return [_pg(row) for row in await cur.fetchall()]

    async def add_assistant_version(
        self, assistant_id: str, owner: str, fields: AssistantFields
    ) -> AssistantRecord | None:
        async with self._pool.connection() as conn, conn.transaction():
            # The row lock orders concurrent updates: each gets its own version number.
            cur = await conn.execute(
                "SELECT assistant_id FROM agent_assistants "
                "WHERE assistant_id = %s AND owner = %s FOR UPDATE",
                (assistant_id, owner),
            )
            if await cur.fetchone() is None:
                return None
            cur = await conn.execute(
                "SELECT max(version) + 1 AS next FROM agent_assistant_versions "
                "WHERE assistant_id = %s",
                (assistant_id,),
            )
            row = await cur.fetchone()
            version = int(row["next"]) if row is not None and row["next"] is not None else 1
            if version > MAX_ASSISTANT_VERSIONS:
                raise AssistantVersionLimitError(assistant_id)
            await self._insert_version(conn, assistant_id, version, fields)
            await conn.execute(
                "UPDATE agent_assistants SET version = %s, updated_at = now() "
                "WHERE assistant_id = %s",
                (version, assistant_id),
            )
            # Read in the transaction: after it, a concurrent update may be the latest.
            return await self._latest_in(conn, assistant_id)

    @staticmethod
    async def _latest_in(conn: Any, assistant_id: str) -> AssistantRecord | None:
        cur = await conn.execute(f"{_LATEST_SELECT} WHERE a.assistant_id = %s", (assistant_id,))
        row = await cur.fetchone()
        return None if row is None else _pg(row)

    async def assistant_versions(self, assistant_id: str, owner: str) -> list[AssistantRecord]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"{_VERSIONS_SELECT} WHERE a.assistant_id = %s AND a.owner = %s "
                "ORDER BY v.version DESC",
                (assistant_id, owner),
            )
            return [_pg(row) for row in await cur.fetchall()]

    async def set_latest_assistant(
        self, assistant_id: str, owner: str, version: int
    ) -> AssistantRecord | None:
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE agent_assistants AS a SET version = %s, updated_at = now() "
                "WHERE a.assistant_id = %s AND a.owner = %s AND EXISTS (SELECT 1 FROM "
                "agent_assistant_versions AS v WHERE v.assistant_id = a.assistant_id "
                "AND v.version = %s)",
                (version, assistant_id, owner, version),
            )
            if cur.rowcount != 1:
                return None
            return await self._latest_in(conn, assistant_id)

    async def delete_assistant(self, assistant_id: str, owner: str) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM agent_assistants WHERE assistant_id = %s AND owner = %s",
                (assistant_id, owner),
            )
            return cur.rowcount > 0

    async def delete_owner_assistants(self, owner: str) -> int:
        async with self._pool.connection() as conn:
            cur = await conn.execute("DELETE FROM agent_assistants WHERE owner = %s", (owner,))
            return cur.rowcount


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SqliteAssistants:
    _conn: aiosqlite.Connection
    _lock: asyncio.Lock

    async def _insert_version(
        self, assistant_id: str, version: int, fields: AssistantFields, at: str
    ) -> None:
        await self._conn.execute(
            _INSERT_VERSION.format(extra=", created_at", marks=", ".join(["?"] * 9)),
            (
                assistant_id,
                version,
                fields.graph_id,
                fields.name,
                fields.description,
                json.dumps(fields.config),
                json.dumps(fields.context),
                json.dumps(fields.metadata),
                at,
            ),
        )

    async def create_assistant(
        self, assistant_id: str, owner: str, fields: AssistantFields
    ) -> AssistantRecord:
        now = _now()
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                cur = await self._conn.execute(
                    "INSERT INTO agent_assistants (assistant_id, owner, version, created_at, "
                    "updated_at) VALUES (?, ?, 1, ?, ?) ON CONFLICT (assistant_id) DO NOTHING",
                    (assistant_id, owner, now, now),
                )
                created = cur.rowcount == 1
                if created:
                    await self._insert_version(assistant_id, 1, fields, now)
                await self._conn.execute("COMMIT")
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
        if not created:
            raise AssistantExistsError(assistant_id)
        record = await self.get_assistant(assistant_id, owner)
        assert record is not None, "created in the transaction above"
        return record

    async def get_assistant(self, assistant_id: str, owner: str) -> AssistantRecord | None:
        async with self._lock:
            cur = await self._conn.execute(
                f"{_LATEST_SELECT} WHERE a.assistant_id = ? AND a.owner = ?",
                (assistant_id, owner),
            )
            row = await cur.fetchone()
        return None if row is None else _sqlite(row)

    async def owner_assistants(self, owner: str) -> list[AssistantRecord]:
        async with self._lock:
            cur = await self._conn.execute(
                f"{_LATEST_SELECT} WHERE a.owner = ? ORDER BY a.created_at DESC", (owner,)
            )
            rows = await cur.fetchall()
        return [_sqlite(row) for row in rows]

    async def add_assistant_version(
        self, assistant_id: str, owner: str, fields: AssistantFields
    ) -> AssistantRecord | None:
        now = _now()
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                cur = await self._conn.execute(
                    "SELECT coalesce(max(v.version), 0) + 1 AS next FROM agent_assistants AS a "
                    "JOIN agent_assistant_versions AS v ON v.assistant_id = a.assistant_id "
                    "WHERE a.assistant_id = ? AND a.owner = ?",
                    (assistant_id, owner),
                )
                row = await cur.fetchone()
                version = 1 if row is None else int(row["next"])
                record = None
                if version > MAX_ASSISTANT_VERSIONS:
                    raise AssistantVersionLimitError(assistant_id)
                if version > 1:
                    await self._insert_version(assistant_id, version, fields, now)
                    await self._conn.execute(
                        "UPDATE agent_assistants SET version = ?, updated_at = ? "
                        "WHERE assistant_id = ?",
                        (version, now, assistant_id),
                    )
                    # Read under the lock: after it, a concurrent update may be the latest.
                    record = await self._latest_locked(assistant_id)
                await self._conn.execute("COMMIT")
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
        return record

    async def _latest_locked(self, assistant_id: str) -> AssistantRecord | None:
        cur = await self._conn.execute(
            f"{_LATEST_SELECT} WHERE a.assistant_id = ?", (assistant_id,)
        )
        row = await cur.fetchone()
        return None if row is None else _sqlite(row)

    async def assistant_versions(self, assistant_id: str, owner: str) -> list[AssistantRecord]:
        async with self._lock:
            cur = await self._conn.execute(
                f"{_VERSIONS_SELECT} WHERE a.assistant_id = ? AND a.owner = ? "
                "ORDER BY v.version DESC",
                (assistant_id, owner),
            )
            rows = await cur.fetchall()
        return [_sqlite(row) for row in rows]

    async def set_latest_assistant(
        self, assistant_id: str, owner: str, version: int
    ) -> AssistantRecord | None:
        async with self._lock:
            cur = await self._conn.execute(
                "UPDATE agent_assistants SET version = ?, updated_at = ? "
                "WHERE assistant_id = ? AND owner = ? AND EXISTS (SELECT 1 FROM "
                "agent_assistant_versions AS v WHERE v.assistant_id = ? AND v.version = ?)",
                (version, _now(), assistant_id, owner, assistant_id, version),
            )
            return await self._latest_locked(assistant_id) if cur.rowcount == 1 else None

    async def delete_assistant(self, assistant_id: str, owner: str) -> bool:
        async with self._lock:
            cur = await self._conn.execute(
                "DELETE FROM agent_assistants WHERE assistant_id = ? AND owner = ?",
                (assistant_id, owner),
            )
            return cur.rowcount > 0

    async def delete_owner_assistants(self, owner: str) -> int:
        async with self._lock:
            cur = await self._conn.execute("DELETE FROM agent_assistants WHERE owner = ?", (owner,))
            return cur.rowcount
