"""The service tables in the embedded SQLite file (no DATABASE_URL). Parameterised SQL only.

One aiosqlite connection in autocommit mode; an asyncio lock keeps a multi-statement change
from interleaving with another coroutine's on the same connection.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from agent_service.persistence.assistant_tables import SqliteAssistants
from agent_service.persistence.records import (
    KEEP_TTL,
    AuditRecord,
    RunRecord,
    RunStart,
    RunStatus,
    ThreadExistsError,
    ThreadQuery,
    ThreadRecord,
    ThreadStatus,
    TtlChange,
)
from agent_service.persistence.schema import CHECKPOINT_TABLES_SQLITE, SERVICE_TABLES

# Seconds since the epoch, as `lease_expires_at` holds it.
_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
# A run that died leaves `busy` behind; once its lease expired the thread reports `error`.
_STATUS = f"CASE WHEN status = 'busy' AND lease_expires_at < {_NOW} THEN 'error' ELSE status END"
_THREAD_COLUMNS = (
    f"thread_id, owner, graph_id, metadata, {_STATUS} AS status, created_at, updated_at, "
    "ttl_minutes"
)
_RUN_COLUMNS_LIVE = (
    "r.run_id, r.thread_id, r.owner, r.assistant_id, r.graph_id, "
    "CASE WHEN r.status IN ('pending', 'running') AND (t.active_run_id IS NOT r.run_id "
    f"OR t.lease_expires_at < {_NOW}) THEN 'error' ELSE r.status END AS status, "
    "r.metadata, r.multitask_strategy, r.error, r.created_at, r.updated_at"
)
_RUN_COLUMNS = (
    "run_id, thread_id, owner, assistant_id, graph_id, status, metadata, "
    "multitask_strategy, error, created_at, updated_at"
)


def _run_row(run: RunRecord) -> tuple[Any, ...]:
    """`run` as the values of _RUN_COLUMNS, in their order."""
    return (
        run.run_id,
        run.thread_id,
        run.owner,
        run.assistant_id,
        run.graph_id,
        run.status,
        json.dumps(run.metadata),
        run.multitask_strategy,
        run.error,
        run.created_at.isoformat(),
        run.updated_at.isoformat(),
    )


# Sort keys and orders come from validated Literals; this table maps them to SQL text.
_SORT_SQL = {
    ("thread_id", "asc"): "thread_id ASC",
    ("thread_id", "desc"): "thread_id DESC",
    ("status", "asc"): "status ASC, thread_id",
    ("status", "desc"): "status DESC, thread_id",
    ("created_at", "asc"): "created_at ASC, thread_id",
    ("created_at", "desc"): "created_at DESC, thread_id",
    ("updated_at", "asc"): "updated_at ASC, thread_id",
    ("updated_at", "desc"): "updated_at DESC, thread_id",
}


def now_text() -> str:
    """Now, as the ISO 8601 text (UTC) this backend stores times as."""
    return datetime.now(UTC).isoformat()


def _thread(row: aiosqlite.Row) -> ThreadRecord:
    return ThreadRecord(
        thread_id=row["thread_id"],
        owner=row["owner"],
        graph_id=row["graph_id"],
        metadata=json.loads(row["metadata"]),
        status=row["status"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        ttl_minutes=row["ttl_minutes"],
    )


def run_record(row: aiosqlite.Row) -> RunRecord:
    """A row of agent_runs (also read by the SQLite run queue)."""
    return RunRecord(
        run_id=row["run_id"],
        thread_id=row["thread_id"],
        owner=row["owner"],
        assistant_id=row["assistant_id"],
        graph_id=row["graph_id"],
        status=row["status"],
        metadata=json.loads(row["metadata"]),
        multitask_strategy=row["multitask_strategy"],
        error=row["error"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


def _matches(metadata: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(key in metadata and metadata[key] == value for key, value in wanted.items())


class SqliteTables(SqliteAssistants):
    def __init__(self, conn: aiosqlite.Connection, lock: asyncio.Lock | None = None) -> None:
        self._conn = conn
        self._conn.row_factory = aiosqlite.Row
        # Shared with the checkpointer and the store: one writer at a time on the file.
        self._lock = lock or asyncio.Lock()

    @property
    def connection(self) -> aiosqlite.Connection:
        return self._conn

    async def ping(self) -> None:
        async with self._lock:
            await self._conn.execute("SELECT 1")

    async def missing_tables(self) -> list[str]:
        async with self._lock:
            cur = await self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            present = {row["name"] for row in await cur.fetchall()}
        return [name for name in SERVICE_TABLES if name not in present]

    async def create_thread(
        self, thread_id: str, owner: str, metadata: dict[str, Any], graph_id: str | None
    ) -> ThreadRecord:
        now = now_text()
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                cur = await self._conn.execute(
                    "INSERT INTO agent_threads (thread_id, owner, graph_id, metadata, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (thread_id) DO NOTHING",
                    (thread_id, owner, graph_id, json.dumps(metadata), now, now),
                )
                created = cur.rowcount == 1
                if created:
                    # A new thread has no history: whatever is stored under its id is what a
                    # deleted thread of the same id left behind; the new owner never sees it.
                    for table in CHECKPOINT_TABLES_SQLITE:
                        await self._conn.execute(
                            f"DELETE FROM {table} WHERE thread_id = ?",  # noqa: S608
                            (thread_id,),
                        )
                await self._conn.execute("COMMIT")
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            if not created:
                raise ThreadExistsError(thread_id)
        record = await self.get_thread(thread_id, owner)
        assert record is not None
        return record

    async def thread_owner(self, thread_id: str) -> str | None:
        async with self._lock:
            cur = await self._conn.execute(
                "SELECT owner FROM agent_threads WHERE thread_id = ?", (thread_id,)
            )
            row = await cur.fetchone()
        return None if row is None else str(row["owner"])

    async def get_thread(self, thread_id: str, owner: str) -> ThreadRecord | None:
        async with self._lock:
            cur = await self._conn.execute(
                f"SELECT {_THREAD_COLUMNS} FROM agent_threads "  # noqa: S608
                "WHERE thread_id = ? AND owner = ?",
                (thread_id, owner),
            )
            row = await cur.fetchone()
        return None if row is None else _thread(row)

    async def count_threads(self, query: ThreadQuery) -> int:
        everything = ThreadQuery(
            owner=query.owner,
            metadata=query.metadata,
            ids=query.ids,
            status=query.status,
            limit=2**62,
            offset=0,
        )
        return len(await self.search_threads(everything))

    async def update_thread(
        self, thread_id: str, owner: str, metadata: dict[str, Any], ttl: TtlChange
    ) -> ThreadRecord | None:
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                cur = await self._conn.execute(
                    "SELECT metadata, ttl_minutes FROM agent_threads "
                    "WHERE thread_id = ? AND owner = ?",
                    (thread_id, owner),
                )
                row = await cur.fetchone()
                if row is not None:
                    merged = {**json.loads(row["metadata"]), **metadata}
                    minutes = row["ttl_minutes"] if ttl == KEEP_TTL else ttl
                    await self._conn.execute(
                        "UPDATE agent_threads SET metadata = ?, ttl_minutes = ?, updated_at = ? "
                        "WHERE thread_id = ? AND owner = ?",
                        (json.dumps(merged), minutes, now_text(), thread_id, owner),
                    )
                    # Read under the lock: the answer is this update, not a later one.
                    cur = await self._conn.execute(
                        f"SELECT {_THREAD_COLUMNS} FROM agent_threads "  # noqa: S608
                        "WHERE thread_id = ? AND owner = ?",
                        (thread_id, owner),
                    )
                    row = await cur.fetchone()
                await self._conn.execute("COMMIT")
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
        return None if row is None else _thread(row)

    async def keep_latest_checkpoints(self, thread_id: str) -> None:
        """Delete the thread's checkpoints (and their writes) but the newest of each namespace:
        langgraph-checkpoint-sqlite's ids are time-ordered UUIDs, so the newest is the max."""
        latest = (
            "SELECT checkpoint_ns, max(checkpoint_id) FROM checkpoints "
            "WHERE thread_id = ? GROUP BY checkpoint_ns"
        )
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                for table in CHECKPOINT_TABLES_SQLITE:
                    await self._conn.execute(
                        f"DELETE FROM {table} WHERE thread_id = ? "  # noqa: S608
                        f"AND (checkpoint_ns, checkpoint_id) NOT IN ({latest})",
                        (thread_id, thread_id),
                    )
                await self._conn.execute("COMMIT")
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise

    async def search_threads(self, query: ThreadQuery) -> list[ThreadRecord]:
        clauses = ["owner = ?"]
        params: list[Any] = [query.owner]
        if query.ids is not None:
            clauses.append(f"thread_id IN ({', '.join('?' for _ in query.ids) or 'NULL'})")
            params += query.ids
        if query.status is not None:
            clauses.append(f"{_STATUS} = ?")
            params.append(query.status)
        statement = (
            f"SELECT {_THREAD_COLUMNS} FROM agent_threads WHERE {' AND '.join(clauses)} "  # noqa: S608
            f"ORDER BY {_SORT_SQL[(query.sort_by, query.sort_order)]}"
        )
        async with self._lock:
            cur = await self._conn.execute(statement, params)
            rows = await cur.fetchall()
        # The embedded database is small: the JSON containment filter runs here.
        threads = [_thread(row) for row in rows]
        if query.metadata:
            threads = [t for t in threads if _matches(t.metadata, query.metadata)]
        return threads[query.offset : query.offset + query.limit]

    async def delete_thread(self, thread_id: str, owner: str) -> bool:
        async with self._lock:
            await self._conn.execute("DELETE FROM agent_runs WHERE thread_id = ?", (thread_id,))
            cur = await self._conn.execute(
                "DELETE FROM agent_threads WHERE thread_id = ? AND owner = ?", (thread_id, owner)
            )
            return cur.rowcount > 0

    async def set_thread_graph(self, thread_id: str, owner: str, graph_id: str) -> None:
        async with self._lock:
            await self._conn.execute(
                "UPDATE agent_threads SET graph_id = ?, updated_at = ? "
                "WHERE thread_id = ? AND owner = ? AND graph_id IS NULL",
                (graph_id, now_text(), thread_id, owner),
            )

    async def acquire_thread(
        self, thread_id: str, owner: str, run_id: str, lease_seconds: float
    ) -> bool:
        now = time.time()
        async with self._lock:
            cur = await self._conn.execute(
                "UPDATE agent_threads SET status = 'busy', active_run_id = ?, "
                "lease_expires_at = ?, updated_at = ? WHERE thread_id = ? AND owner = ? "
                "AND (status <> 'busy' OR lease_expires_at IS NULL OR lease_expires_at < ?)",
                (run_id, now + lease_seconds, now_text(), thread_id, owner, now),
            )
            return cur.rowcount == 1

    async def renew_lease(self, thread_id: str, run_id: str, lease_seconds: float) -> None:
        async with self._lock:
            await self._conn.execute(
                "UPDATE agent_threads SET lease_expires_at = ? "
                "WHERE thread_id = ? AND active_run_id = ?",
                (time.time() + lease_seconds, thread_id, run_id),
            )

    async def release_thread(self, thread_id: str, run_id: str, status: ThreadStatus) -> None:
        async with self._lock:
            await self._conn.execute(
                "UPDATE agent_threads SET status = ?, active_run_id = NULL, "
                "lease_expires_at = NULL, updated_at = ? "
                "WHERE thread_id = ? AND active_run_id = ?",
                (status, now_text(), thread_id, run_id),
            )

    async def create_run(self, run: RunRecord) -> None:
        async with self._lock:
            await self._conn.execute(
                f"INSERT INTO agent_runs ({_RUN_COLUMNS}) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _run_row(run),
            )

    async def finish_run(self, run_id: str, status: RunStatus, error: str | None) -> None:
        async with self._lock:
            await self._conn.execute(
                "UPDATE agent_runs SET status = ?, error = ?, updated_at = ? WHERE run_id = ?",
                (status, error, now_text(), run_id),
            )

    async def start_run(
        self, run: RunRecord, lease_seconds: float, *, queued_holds: bool = False
    ) -> RunStart:
        # One write transaction under the one lock: SQLite serialises writers anyway.
        now = time.time()
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                start = await self._start_run(run, lease_seconds, queued_holds, now)
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")
            return start

    async def _start_run(
        self, run: RunRecord, lease_seconds: float, queued_holds: bool, now: float
    ) -> RunStart:
        cur = await self._conn.execute(
            "SELECT graph_id FROM agent_threads WHERE thread_id = ? AND owner = ?",
            (run.thread_id, run.owner),
        )
        target = await cur.fetchone()
        if target is None:
            return RunStart(started=False, thread_found=False)
        graph_id = target["graph_id"]
        if graph_id is not None and graph_id != run.graph_id:
            return RunStart(started=False, thread_found=True, thread_graph_id=graph_id)
        if queued_holds:
            # As on PostgreSQL: a queued run that has not ended holds the thread for `reject`.
            cur = await self._conn.execute(
                "SELECT 1 FROM agent_run_queue AS q JOIN agent_runs AS r ON r.run_id = q.run_id "
                "WHERE q.thread_id = ? AND r.status IN ('pending', 'running') LIMIT 1",
                (run.thread_id,),
            )
            if await cur.fetchone() is not None:
                return RunStart(started=False, thread_found=True, thread_graph_id=graph_id)
        cur = await self._conn.execute(
            "UPDATE agent_threads SET status = 'busy', active_run_id = ?, "
            "lease_expires_at = ?, graph_id = COALESCE(graph_id, ?), updated_at = ? "
            "WHERE thread_id = ? AND owner = ? "
            "AND (status <> 'busy' OR lease_expires_at IS NULL OR lease_expires_at < ?)",
            (
                run.run_id,
                now + lease_seconds,
                run.graph_id,
                now_text(),
                run.thread_id,
                run.owner,
                now,
            ),
        )
        if cur.rowcount != 1:
            return RunStart(started=False, thread_found=True, thread_graph_id=graph_id)
        await self._conn.execute(
            f"INSERT INTO agent_runs ({_RUN_COLUMNS}) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _run_row(run),
        )
        return RunStart(started=True, thread_found=True, thread_graph_id=graph_id)

    async def end_run(
        self,
        run_id: str,
        thread_id: str,
        status: RunStatus,
        error: str | None,
        thread_status: ThreadStatus,
    ) -> None:
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                await self._conn.execute(
                    "UPDATE agent_runs SET status = ?, error = ?, updated_at = ? WHERE run_id = ?",
                    (status, error, now_text(), run_id),
                )
                await self._conn.execute(
                    "UPDATE agent_threads SET status = ?, active_run_id = NULL, "
                    "lease_expires_at = NULL, updated_at = ? "
                    "WHERE thread_id = ? AND active_run_id = ?",
                    (thread_status, now_text(), thread_id, run_id),
                )
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def get_run(self, run_id: str, owner: str) -> RunRecord | None:
        async with self._lock:
            cur = await self._conn.execute(
                f"SELECT {_RUN_COLUMNS_LIVE} FROM agent_runs AS r "  # noqa: S608
                "LEFT JOIN agent_threads AS t ON t.thread_id = r.thread_id "
                "WHERE r.run_id = ? AND r.owner = ?",
                (run_id, owner),
            )
            row = await cur.fetchone()
        return None if row is None else run_record(row)

    async def user_threads(self, owner: str) -> list[ThreadRecord]:
        async with self._lock:
            cur = await self._conn.execute(
                f"SELECT {_THREAD_COLUMNS} FROM agent_threads "  # noqa: S608
                "WHERE owner = ? ORDER BY created_at",
                (owner,),
            )
            return [_thread(row) for row in await cur.fetchall()]

    async def user_runs(self, owner: str) -> list[RunRecord]:
        async with self._lock:
            cur = await self._conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM agent_runs WHERE owner = ? ORDER BY created_at",  # noqa: S608
                (owner,),
            )
            return [run_record(row) for row in await cur.fetchall()]

    async def audit(
        self, principal: str, action: str, subject: str, detail: dict[str, Any]
    ) -> None:
        async with self._lock:
            await self._conn.execute(
                "INSERT INTO agent_audit_log (at, principal, action, subject, detail) "
                "VALUES (?, ?, ?, ?, ?)",
                (now_text(), principal, action, subject, json.dumps(detail)),
            )

    async def audit_entries(self, subject: str) -> list[AuditRecord]:
        async with self._lock:
            cur = await self._conn.execute(
                "SELECT at, principal, action, subject, detail FROM agent_audit_log "
                "WHERE subject = ? ORDER BY id",
                (subject,),
            )
            rows = await cur.fetchall()
        return [
            AuditRecord(
                at=datetime.fromisoformat(row["at"]),
                principal=row["principal"],
                action=row["action"],
                subject=row["subject"],
                detail=json.loads(row["detail"]),
            )
            for row in rows
        ]

    async def delete_user(self, owner: str) -> tuple[int, int]:
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                runs = await self._conn.execute("DELETE FROM agent_runs WHERE owner = ?", (owner,))
                threads = await self._conn.execute(
                    "DELETE FROM agent_threads WHERE owner = ?", (owner,)
                )
                await self._conn.execute("COMMIT")
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            return threads.rowcount, runs.rowcount
