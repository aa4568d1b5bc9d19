"""The run queue in the embedded SQLite file: one process, so the shared asyncio lock makes
a claim atomic; an explicit transaction keeps it whole across a crash. Parameterised SQL."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiosqlite

from agent_service.persistence.records import RunRecord
from agent_service.persistence.run_queue import CancelAction, QueuedRun, RunListQuery
from agent_service.persistence.sqlite_tables import now_text, run_record

_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
_LEASE_LOST = f"(t.active_run_id IS NOT r.run_id OR t.lease_expires_at < {_NOW})"
_LIVE_STATUS = (
    "CASE WHEN r.status IN ('pending', 'running') AND q.run_id IS NOT NULL THEN "
    f"  CASE WHEN r.status = 'running' AND {_LEASE_LOST} THEN 'pending' ELSE r.status END "
    f"WHEN r.status IN ('pending', 'running') AND {_LEASE_LOST} THEN 'error' "
    "ELSE r.status END"
)
_COLUMNS = (
    "r.run_id, r.thread_id, r.owner, r.assistant_id, r.graph_id, "
    f"{_LIVE_STATUS} AS status, r.metadata, r.multitask_strategy, r.error, "
    "r.created_at, r.updated_at"
)
_FROM = (
    "FROM agent_runs AS r LEFT JOIN agent_run_queue AS q ON q.run_id = r.run_id "
    "LEFT JOIN agent_threads AS t ON t.thread_id = r.thread_id"
)
_FREE_THREAD = f"(t.status <> 'busy' OR t.lease_expires_at IS NULL OR t.lease_expires_at < {_NOW})"
_CLAIMABLE = f"""
    SELECT q.run_id, q.thread_id FROM agent_run_queue AS q
    JOIN agent_runs AS r ON r.run_id = q.run_id
    JOIN agent_threads AS t ON t.thread_id = q.thread_id
    WHERE q.run_after <= {_NOW}
      AND (r.status = 'pending' OR (r.status = 'running' AND {_LEASE_LOST}))
      AND {_FREE_THREAD}
      AND NOT EXISTS (
        SELECT 1 FROM agent_run_queue AS q2 JOIN agent_runs AS r2 ON r2.run_id = q2.run_id
        WHERE q2.thread_id = q.thread_id AND r2.status IN ('pending', 'running')
          AND q2.run_after <= {_NOW} AND r2.created_at < r.created_at
      )
    ORDER BY r.created_at
    LIMIT 1
"""  # noqa: S608 - fixed text, no request data


def _marks(values: list[str]) -> str:
    return ", ".join("?" for _ in values)


class SqliteRunQueue:
    def __init__(self, conn: aiosqlite.Connection, lock: asyncio.Lock) -> None:
        # The service tables' autocommit connection and the lock every writer shares.
        self._conn = conn
        self._lock = lock

    async def enqueue(
        self, run: RunRecord, kwargs: dict[str, Any], *, stateless: bool, delay_seconds: float
    ) -> None:
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                await self._conn.execute(
                    "INSERT INTO agent_runs (run_id, thread_id, owner, assistant_id, graph_id, "
                    "status, metadata, multitask_strategy, error, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, NULL, ?, ?)",
                    (
                        run.run_id,
                        run.thread_id,
                        run.owner,
                        run.assistant_id,
                        run.graph_id,
                        json.dumps(run.metadata),
                        run.multitask_strategy,
                        run.created_at.isoformat(),
                        run.updated_at.isoformat(),
                    ),
                )
                await self._conn.execute(
                    "INSERT INTO agent_run_queue (run_id, thread_id, kwargs, stateless, "
                    "run_after) VALUES (?, ?, ?, ?, ?)",
                    (
                        run.run_id,
                        run.thread_id,
                        json.dumps(kwargs),
                        int(stateless),
                        time.time() + delay_seconds,
                    ),
                )
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def claim(self, worker: str, lease_seconds: float) -> QueuedRun | None:
        async with self._lock:
            cur = await self._conn.execute(_CLAIMABLE)
            row = await cur.fetchone()
            if row is None:
                return None
            run_id, thread_id = row["run_id"], row["thread_id"]
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                await self._conn.execute(
                    "UPDATE agent_threads SET status = 'busy', active_run_id = ?, "
                    "lease_expires_at = ?, updated_at = ? WHERE thread_id = ?",
                    (run_id, time.time() + lease_seconds, now_text(), thread_id),
                )
                await self._conn.execute(
                    "UPDATE agent_runs SET status = 'running', updated_at = ? WHERE run_id = ?",
                    (now_text(), run_id),
                )
                await self._conn.execute(
                    "UPDATE agent_run_queue SET attempts = attempts + 1, worker = ? "
                    "WHERE run_id = ?",
                    (worker, run_id),
                )
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")
            cur = await self._conn.execute(
                "SELECT kwargs, stateless, attempts FROM agent_run_queue WHERE run_id = ?",
                (run_id,),
            )
            queued = await cur.fetchone()
            cur = await self._conn.execute(
                f"SELECT {_COLUMNS} {_FROM} WHERE r.run_id = ?",
                (run_id,),
            )
            run_row = await cur.fetchone()
        assert queued is not None
        assert run_row is not None
        return QueuedRun(
            run=run_record(run_row),
            kwargs=json.loads(queued["kwargs"]),
            stateless=bool(queued["stateless"]),
            attempts=int(queued["attempts"]),
        )

    async def get_run(self, run_id: str, owner: str) -> RunRecord | None:
        async with self._lock:
            cur = await self._conn.execute(
                f"SELECT {_COLUMNS} {_FROM} WHERE r.run_id = ? AND r.owner = ?",
                (run_id, owner),
            )
            row = await cur.fetchone()
        return None if row is None else run_record(row)

    async def list_runs(self, query: RunListQuery) -> list[RunRecord]:
        async with self._lock:
            cur = await self._conn.execute(
                f"SELECT * FROM (SELECT {_COLUMNS} {_FROM} "  # noqa: S608
                "WHERE r.thread_id = ? AND r.owner = ?) AS live "
                "WHERE ? IS NULL OR status = ? "
                "ORDER BY created_at DESC, run_id LIMIT ? OFFSET ?",
                (
                    query.thread_id,
                    query.owner,
                    query.status,
                    query.status,
                    query.limit,
                    query.offset,
                ),
            )
            return [run_record(row) for row in await cur.fetchall()]

    async def active_run_ids(self, thread_id: str) -> list[str]:
        async with self._lock:
            cur = await self._conn.execute(
                f"SELECT run_id FROM (SELECT {_COLUMNS} {_FROM} "  # noqa: S608
                "WHERE r.thread_id = ? AND r.status IN ('pending', 'running')) AS live "
                "WHERE status IN ('pending', 'running') ORDER BY created_at",
                (thread_id,),
            )
            return [row["run_id"] for row in await cur.fetchall()]

    async def cancel_pending(self, run_ids: list[str], *, delete: bool) -> list[str]:
        if not run_ids:
            return []
        async with self._lock:
            cur = await self._conn.execute(
                f"SELECT run_id FROM agent_runs WHERE status = 'pending' "  # noqa: S608
                f"AND run_id IN ({_marks(run_ids)})",
                run_ids,
            )
            ended = [row["run_id"] for row in await cur.fetchall()]
            if ended and delete:
                await self._conn.execute(
                    f"DELETE FROM agent_runs WHERE run_id IN ({_marks(ended)})",  # noqa: S608
                    ended,
                )
            elif ended:
                await self._conn.execute(
                    "UPDATE agent_runs SET status = 'interrupted', updated_at = ? "  # noqa: S608
                    f"WHERE run_id IN ({_marks(ended)})",
                    [now_text(), *ended],
                )
            return ended

    async def request_cancel(self, run_id: str, action: CancelAction) -> None:
        async with self._lock:
            await self._conn.execute(
                "INSERT INTO agent_run_cancels (run_id, action, requested_at) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET action = excluded.action",
                (run_id, action, time.time()),
            )

    async def cancel_requests(self, run_ids: list[str]) -> dict[str, CancelAction]:
        if not run_ids:
            return {}
        async with self._lock:
            cur = await self._conn.execute(
                f"SELECT run_id, action FROM agent_run_cancels "  # noqa: S608
                f"WHERE run_id IN ({_marks(run_ids)})",
                run_ids,
            )
            return {row["run_id"]: row["action"] for row in await cur.fetchall()}

    async def set_output(self, run_id: str, output: Any) -> None:
        async with self._lock:
            await self._conn.execute(
                "UPDATE agent_run_queue SET output = ? WHERE run_id = ?",
                (json.dumps(output), run_id),
            )

    async def get_output(self, run_id: str) -> tuple[bool, Any]:
        async with self._lock:
            cur = await self._conn.execute(
                "SELECT output FROM agent_run_queue WHERE run_id = ?", (run_id,)
            )
            row = await cur.fetchone()
        if row is None:
            return False, None
        return True, None if row["output"] is None else json.loads(row["output"])

    async def queued_kwargs(self, run_id: str) -> dict[str, Any] | None:
        async with self._lock:
            cur = await self._conn.execute(
                "SELECT kwargs FROM agent_run_queue WHERE run_id = ?", (run_id,)
            )
            row = await cur.fetchone()
        return None if row is None else dict(json.loads(row["kwargs"]))

    async def delete_run(self, run_id: str, owner: str) -> bool:
        async with self._lock:
            cur = await self._conn.execute(
                "DELETE FROM agent_runs WHERE run_id = ? AND owner = ? "
                "AND status NOT IN ('pending', 'running')",
                (run_id, owner),
            )
            return cur.rowcount > 0

    async def rollback_run(self, thread_id: str, run_id: str) -> None:
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                # langgraph-checkpoint-sqlite keeps metadata as JSON text in a BLOB column.
                await self._conn.execute(
                    "DELETE FROM writes WHERE thread_id = ? AND checkpoint_id IN ("
                    "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? "
                    "AND json_extract(CAST(metadata AS TEXT), '$.run_id') = ?)",
                    (thread_id, thread_id, run_id),
                )
                await self._conn.execute(
                    "DELETE FROM checkpoints WHERE thread_id = ? "
                    "AND json_extract(CAST(metadata AS TEXT), '$.run_id') = ?",
                    (thread_id, run_id),
                )
                await self._conn.execute("DELETE FROM agent_runs WHERE run_id = ?", (run_id,))
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def runs_matching(
        self, owner: str, thread_id: str | None, run_ids: list[str] | None, statuses: list[str]
    ) -> list[RunRecord]:
        clauses = ["r.owner = ?"]
        params: list[Any] = [owner]
        if thread_id is not None:
            clauses.append("r.thread_id = ?")
            params.append(thread_id)
        if run_ids is not None:
            clauses.append(f"r.run_id IN ({_marks(run_ids) or 'NULL'})")
            params.extend(run_ids)
        params.extend(statuses)
        async with self._lock:
            cur = await self._conn.execute(
                f"SELECT * FROM (SELECT {_COLUMNS} {_FROM} "  # noqa: S608
                f"WHERE {' AND '.join(clauses)}) AS live "
                f"WHERE status IN ({_marks(statuses)}) ORDER BY created_at",
                params,
            )
            return [run_record(row) for row in await cur.fetchall()]

    async def depth(self) -> int:
        async with self._lock:
            cur = await self._conn.execute(
                "SELECT count(DISTINCT q.thread_id) AS n FROM agent_run_queue AS q "  # noqa: S608
                "JOIN agent_runs AS r ON r.run_id = q.run_id "
                f"WHERE r.status = 'pending' AND q.run_after <= {_NOW}"
            )
            row = await cur.fetchone()
        return 0 if row is None else int(row["n"])

    async def owner_active_count(self, owner: str) -> int:
        async with self._lock:
            cur = await self._conn.execute(
                "SELECT count(*) AS n FROM agent_run_queue AS q "
                "JOIN agent_runs AS r ON r.run_id = q.run_id "
                "WHERE r.owner = ? AND r.status IN ('pending', 'running')",
                (owner,),
            )
            row = await cur.fetchone()
        return 0 if row is None else int(row["n"])

    async def hand_back(self, run_id: str) -> None:
        async with self._lock:
            await self._conn.execute(
                "UPDATE agent_run_queue SET attempts = max(attempts - 1, 0) WHERE run_id = ?",
                (run_id,),
            )

    async def renew_claim(
        self, thread_id: str, run_id: str, attempt: int, lease_seconds: float
    ) -> bool:
        async with self._lock:
            cur = await self._conn.execute(
                "UPDATE agent_threads SET lease_expires_at = ? "
                "WHERE thread_id = ? AND active_run_id = ? AND EXISTS ("
                "SELECT 1 FROM agent_run_queue WHERE run_id = ? AND attempts = ?)",
                (time.time() + lease_seconds, thread_id, run_id, run_id, attempt),
            )
            return cur.rowcount == 1
