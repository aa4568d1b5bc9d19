"""The crons table, on PostgreSQL and on SQLite. Parameterised SQL only.

Every method a client reaches is scoped to an owner, in SQL: another principal's cron is
invisible. The scheduler's two methods (`due`, `claim`) see every owner's crons; `claim` is one
conditional UPDATE, so of several schedulers reading the same due cron exactly one moves its
`next_run_at` on and fires it (PostgreSQL re-checks the WHERE clause on the row version the
first writer committed, https://www.postgresql.org/docs/15/transaction-iso.html#XACT-READ-COMMITTED).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import aiosqlite
from psycopg import sql
from psycopg.types.json import Jsonb

from agent_service.persistence.pool import Pool

CronSortBy = Literal[
    "cron_id", "assistant_id", "thread_id", "created_at", "updated_at", "next_run_date", "end_time"
]
_SORT_COLUMNS: dict[str, str] = {
    "cron_id": "cron_id",
    "assistant_id": "assistant_id",
    "thread_id": "thread_id",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "next_run_date": "next_run_at",
    "end_time": "end_time",
}
_COLUMNS = (
    "cron_id, owner, assistant_id, graph_id, thread_id, schedule, timezone, payload, metadata, "
    "on_run_completed, enabled, end_time, next_run_at, created_at, updated_at"
)
# What an update may change (the rest is fixed at creation).
_MUTABLE = (
    "schedule",
    "timezone",
    "payload",
    "metadata",
    "on_run_completed",
    "enabled",
    "end_time",
    "next_run_at",
)


@dataclass(frozen=True)
class CronRecord:
    cron_id: str
    owner: str
    assistant_id: str
    graph_id: str
    thread_id: str | None
    schedule: str
    timezone: str | None
    payload: dict[str, Any]
    metadata: dict[str, Any]
    on_run_completed: str | None
    enabled: bool
    end_time: datetime | None
    next_run_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CronQuery:
    owner: str
    assistant_id: str | None = None
    thread_id: str | None = None
    enabled: bool | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    limit: int = 10
    offset: int = 0
    sort_by: CronSortBy = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"


class CronTables(Protocol):
    async def create(self, cron: CronRecord) -> None: ...

    async def get(self, cron_id: str, owner: str) -> CronRecord | None: ...

    async def search(self, query: CronQuery) -> list[CronRecord]: ...

    async def count(self, query: CronQuery) -> int: ...

    async def save(self, cron: CronRecord) -> bool:
        """Write the mutable fields of the owner's cron; False when it is gone."""
        ...

    async def delete(self, cron_id: str, owner: str) -> bool: ...

    async def due(self, now: datetime, limit: int) -> list[CronRecord]:
        """Enabled crons of every owner whose next firing is at or before `now`, soonest
        first."""
        ...

    async def claim(self, cron_id: str, expected: datetime, following: datetime | None) -> bool:
        """Move the cron's next firing from `expected` to `following` (None: never again);
        True for the one caller that did, which then fires it."""
        ...

    async def user_crons(self, owner: str) -> list[CronRecord]: ...

    async def delete_user(self, owner: str) -> int: ...


def _order(query: CronQuery) -> str:
    # Both parts come from validated Literals mapped through fixed tables: no client text.
    column = _SORT_COLUMNS[query.sort_by]
    direction = "ASC" if query.sort_order == "asc" else "DESC"
    return f"{column} {direction}, cron_id {direction}"


class PostgresCronTables:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def create(self, cron: CronRecord) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                f"INSERT INTO agent_crons ({_COLUMNS}) "  # noqa: S608 - fixed column list
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    cron.cron_id,
                    cron.owner,
                    cron.assistant_id,
                    cron.graph_id,
                    cron.thread_id,
                    cron.schedule,
                    cron.timezone,
                    Jsonb(cron.payload),
                    Jsonb(cron.metadata),
                    cron.on_run_completed,
                    cron.enabled,
                    cron.end_time,
                    cron.next_run_at,
                    cron.created_at,
                    cron.updated_at,
                ),
            )

    async def get(self, cron_id: str, owner: str) -> CronRecord | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM agent_crons "  # noqa: S608
                "WHERE cron_id = %s AND owner = %s",
                (cron_id, owner),
            )
            row = await cur.fetchone()
        return None if row is None else CronRecord(**row)

    def _where(self, query: CronQuery) -> tuple[sql.Composed, list[Any]]:
        clauses: list[sql.Composable] = [sql.SQL("owner = %s")]
        params: list[Any] = [query.owner]
        for column, value in (
            ("assistant_id", query.assistant_id),
            ("thread_id", query.thread_id),
            ("enabled", query.enabled),
        ):
            if value is not None:
                clauses.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
                params.append(value)
        if query.metadata:
            clauses.append(sql.SQL("metadata @> %s"))
            params.append(Jsonb(query.metadata))
        return sql.SQL(" AND ").join(clauses), params

    async def search(self, query: CronQuery) -> list[CronRecord]:
        where, params = self._where(query)
        statement = sql.SQL("SELECT {} FROM agent_crons WHERE {} ORDER BY {} LIMIT %s OFFSET %s")
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                statement.format(sql.SQL(_COLUMNS), where, sql.SQL(_order(query))),
                [*params, query.limit, query.offset],
            )
            return [CronRecord(**row) for row in await cur.fetchall()]

    async def count(self, query: CronQuery) -> int:
        where, params = self._where(query)
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                sql.SQL("SELECT count(*) AS n FROM agent_crons WHERE {}").format(where), params
            )
            row = await cur.fetchone()
        return 0 if row is None else int(row["n"])

    async def save(self, cron: CronRecord) -> bool:
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = %s").format(sql.Identifier(column)) for column in _MUTABLE
        )
        values = [
            Jsonb(v) if column in ("payload", "metadata") else v
            for column, v in ((c, getattr(cron, c)) for c in _MUTABLE)
        ]
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                sql.SQL(
                    "UPDATE agent_crons SET {}, updated_at = %s WHERE cron_id = %s AND owner = %s"
                ).format(assignments),
                [*values, cron.updated_at, cron.cron_id, cron.owner],
            )
            return cur.rowcount == 1

    async def delete(self, cron_id: str, owner: str) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM agent_crons WHERE cron_id = %s AND owner = %s", (cron_id, owner)
            )
            return cur.rowcount == 1

    async def due(self, now: datetime, limit: int) -> list[CronRecord]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM agent_crons "  # noqa: S608
                "WHERE next_run_at IS NOT NULL AND next_run_at <= %s AND enabled "
                "ORDER BY next_run_at LIMIT %s",
                (now, limit),
            )
            return [CronRecord(**row) for row in await cur.fetchall()]

    async def claim(self, cron_id: str, expected: datetime, following: datetime | None) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE agent_crons SET next_run_at = %s "
                "WHERE cron_id = %s AND next_run_at = %s AND enabled",
                (following, cron_id, expected),
            )
            return cur.rowcount == 1

    async def user_crons(self, owner: str) -> list[CronRecord]:
        return await self.search(
            CronQuery(owner=owner, limit=2**31 - 1, sort_by="created_at", sort_order="asc")
        )

    async def delete_user(self, owner: str) -> int:
        async with self._pool.connection() as conn:
            cur = await conn.execute("DELETE FROM agent_crons WHERE owner = %s", (owner,))
            return cur.rowcount


def _text(moment: datetime | None) -> str | None:
    """A time as the SQLite table holds it: UTC, fixed width, so text order is time order."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _sqlite_cron(row: aiosqlite.Row) -> CronRecord:
    created, updated = _time(row["created_at"]), _time(row["updated_at"])
    # NOT NULL columns.
    assert created is not None
    assert updated is not None
    return CronRecord(
        cron_id=row["cron_id"],
        owner=row["owner"],
        assistant_id=row["assistant_id"],
        graph_id=row["graph_id"],
        thread_id=row["thread_id"],
        schedule=row["schedule"],
        timezone=row["timezone"],
        payload=json.loads(row["payload"]),
        metadata=json.loads(row["metadata"]),
        on_run_completed=row["on_run_completed"],
        enabled=bool(row["enabled"]),
        end_time=_time(row["end_time"]),
        next_run_at=_time(row["next_run_at"]),
        created_at=created,
        updated_at=updated,
    )


def _matches(metadata: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(key in metadata and metadata[key] == value for key, value in wanted.items())


class SqliteCronTables:
    """On the service tables' connection, under the lock every writer of the file shares."""

    def __init__(self, conn: aiosqlite.Connection, lock: asyncio.Lock) -> None:
        self._conn = conn
        self._conn.row_factory = aiosqlite.Row
        self._lock = lock

    async def _rows(self, statement: str, params: tuple[Any, ...]) -> list[CronRecord]:
        async with self._lock:
            cur = await self._conn.execute(statement, params)
            rows = await cur.fetchall()
        return [_sqlite_cron(row) for row in rows]

    async def create(self, cron: CronRecord) -> None:
        async with self._lock:
            await self._conn.execute(
                f"INSERT INTO agent_crons ({_COLUMNS}) "  # noqa: S608 - fixed column list
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    cron.cron_id,
                    cron.owner,
                    cron.assistant_id,
                    cron.graph_id,
                    cron.thread_id,
                    cron.schedule,
                    cron.timezone,
                    json.dumps(cron.payload),
                    json.dumps(cron.metadata),
                    cron.on_run_completed,
                    int(cron.enabled),
                    _text(cron.end_time),
                    _text(cron.next_run_at),
                    _text(cron.created_at),
                    _text(cron.updated_at),
                ),
            )

    async def get(self, cron_id: str, owner: str) -> CronRecord | None:
        rows = await self._rows(
            f"SELECT {_COLUMNS} FROM agent_crons WHERE cron_id = ? AND owner = ?",  # noqa: S608
            (cron_id, owner),
        )
        return rows[0] if rows else None

    async def _matching(self, query: CronQuery) -> list[CronRecord]:
        clauses: list[str] = ["owner = ?"]
        params: list[Any] = [query.owner]
        for column, value in (
            ("assistant_id", query.assistant_id),
            ("thread_id", query.thread_id),
            ("enabled", None if query.enabled is None else int(query.enabled)),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        rows = await self._rows(
            f"SELECT {_COLUMNS} FROM agent_crons WHERE {' AND '.join(clauses)} "  # noqa: S608
            f"ORDER BY {_order(query)}",
            tuple(params),
        )
        return [row for row in rows if _matches(row.metadata, query.metadata)]

    async def search(self, query: CronQuery) -> list[CronRecord]:
        rows = await self._matching(query)
        return rows[query.offset : query.offset + query.limit]

    async def count(self, query: CronQuery) -> int:
        return len(await self._matching(query))

    async def save(self, cron: CronRecord) -> bool:
        values: list[Any] = []
        for column in _MUTABLE:
            value = getattr(cron, column)
            if column in ("payload", "metadata"):
                value = json.dumps(value)
            elif column in ("end_time", "next_run_at"):
                value = _text(value)
            elif column == "enabled":
                value = int(value)
            values.append(value)
        assignments = ", ".join(f"{column} = ?" for column in _MUTABLE)
        async with self._lock:
            cur = await self._conn.execute(
                f"UPDATE agent_crons SET {assignments}, updated_at = ? "  # noqa: S608
                "WHERE cron_id = ? AND owner = ?",
                (*values, _text(cron.updated_at), cron.cron_id, cron.owner),
            )
            return cur.rowcount == 1

    async def delete(self, cron_id: str, owner: str) -> bool:
        async with self._lock:
            cur = await self._conn.execute(
                "DELETE FROM agent_crons WHERE cron_id = ? AND owner = ?", (cron_id, owner)
            )
            return cur.rowcount == 1

    async def due(self, now: datetime, limit: int) -> list[CronRecord]:
        return await self._rows(
            f"SELECT {_COLUMNS} FROM agent_crons "  # noqa: S608
            "WHERE next_run_at IS NOT NULL AND next_run_at <= ? AND enabled = 1 "
            "ORDER BY next_run_at LIMIT ?",
            (_text(now), limit),
        )

    async def claim(self, cron_id: str, expected: datetime, following: datetime | None) -> bool:
        async with self._lock:
            cur = await self._conn.execute(
                "UPDATE agent_crons SET next_run_at = ? "
                "WHERE cron_id = ? AND next_run_at = ? AND enabled = 1",
                (_text(following), cron_id, _text(expected)),
            )
            return cur.rowcount == 1

    async def user_crons(self, owner: str) -> list[CronRecord]:
        return await self._matching(
            CronQuery(owner=owner, limit=2**31 - 1, sort_by="created_at", sort_order="asc")
        )

    async def delete_user(self, owner: str) -> int:
        async with self._lock:
            cur = await self._conn.execute("DELETE FROM agent_crons WHERE owner = ?", (owner,))
            return cur.rowcount
