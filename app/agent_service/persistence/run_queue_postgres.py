"""The run queue on PostgreSQL. Workers of every replica claim runs with `FOR UPDATE SKIP
LOCKED`, so two never take the same run and none waits on another's claim. Parameterised SQL."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from agent_service.persistence.pool import Pool
from agent_service.persistence.records import RunRecord
from agent_service.persistence.run_queue import CancelAction, QueuedRun, RunListQuery

# A thread lease nobody holds any more (expired, or held by another run).
_LEASE_LOST = "(t.active_run_id IS DISTINCT FROM r.run_id OR t.lease_expires_at < now())"
# The run's status as a reader must see it: a queued run whose worker died waits for the next
# worker (`pending`); an inline run whose process died failed (`error`).
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
_FREE_THREAD = "(t.status <> 'busy' OR t.lease_expires_at IS NULL OR t.lease_expires_at < now())"
# Oldest first; a run waits while an older runnable run of its thread waits (enqueue order).
_CLAIMABLE = f"""
    SELECT q.run_id, q.thread_id FROM agent_run_queue AS q
    JOIN agent_runs AS r ON r.run_id = q.run_id
    JOIN agent_threads AS t ON t.thread_id = q.thread_id
    WHERE q.run_after <= now()
      AND (r.status = 'pending' OR (r.status = 'running' AND {_LEASE_LOST}))
      AND {_FREE_THREAD}
      AND NOT EXISTS (
        SELECT 1 FROM agent_run_queue AS q2 JOIN agent_runs AS r2 ON r2.run_id = q2.run_id
        WHERE q2.thread_id = q.thread_id AND r2.status IN ('pending', 'running')
          AND q2.run_after <= now() AND r2.created_at < r.created_at
      )
    ORDER BY r.created_at
    LIMIT 1
    FOR UPDATE OF q SKIP LOCKED
"""  # noqa: S608 - fixed text, no request data


class Lost(Exception):
    """The claimed run or its thread changed hands between the SELECT and the UPDATEs."""


def _run(row: DictRow) -> RunRecord:
    return RunRecord(**row)


class PostgresRunQueue:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def enqueue(
        self, run: RunRecord, kwargs: dict[str, Any], *, stateless: bool, delay_seconds: float
    ) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO agent_runs (run_id, thread_id, owner, assistant_id, graph_id, "
                "status, metadata, multitask_strategy, error, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s, NULL, %s, %s)",
                (
                    run.run_id,
                    run.thread_id,
                    run.owner,
                    run.assistant_id,
                    run.graph_id,
                    Jsonb(run.metadata),
                    run.multitask_strategy,
                    run.created_at,
                    run.updated_at,
                ),
            )
            await conn.execute(
                "INSERT INTO agent_run_queue (run_id, thread_id, kwargs, stateless, run_after) "
                "VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))",
                (run.run_id, run.thread_id, Jsonb(kwargs), stateless, delay_seconds),
            )

    async def claim(self, worker: str, lease_seconds: float) -> QueuedRun | None:
        try:
            return await self._claim(worker, lease_seconds)
        except Lost:
            return None

    async def _claim(self, worker: str, lease_seconds: float) -> QueuedRun | None:
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(_CLAIMABLE)
            row = await cur.fetchone()
            if row is None:
                return None
            return await self.take(conn, row["run_id"], row["thread_id"], worker, lease_seconds)

    async def take(
        self,
        conn: AsyncConnection[DictRow],
        run_id: str,
        thread_id: str,
        worker: str,
        lease_seconds: float,
    ) -> QueuedRun:
        """Make the selected run this worker's, in the caller's transaction; raises Lost when
        it is not claimable any more.

        The SELECT's snapshot may predate another worker's claim of this very run (its row
        lock was gone by the time we reached the row), so each UPDATE checks again, on the
        rows as they are now."""
        # The run: still pending, or running without a live worker; a cancel committed since
        # the SELECT wins.
        cur = await conn.execute(
            "UPDATE agent_runs SET status = 'running', updated_at = now() "
            "WHERE run_id = %s AND (status = 'pending' OR (status = 'running' "
            "AND NOT EXISTS (SELECT 1 FROM agent_threads WHERE thread_id = %s "
            "AND active_run_id = %s AND lease_expires_at >= now())))",
            (run_id, thread_id, run_id),
        )
        if cur.rowcount != 1:
            raise Lost
        # The thread is the mutex: it goes from free (or an expired lease) to this run in one
        # conditional UPDATE, which a second claimer of the run cannot pass.
        cur = await conn.execute(
            "UPDATE agent_threads AS t SET status = 'busy', active_run_id = %s, "  # noqa: S608
            "lease_expires_at = now() + make_interval(secs => %s), updated_at = now() "
            f"WHERE t.thread_id = %s AND {_FREE_THREAD}",
            (run_id, lease_seconds, thread_id),
        )
        if cur.rowcount != 1:
            # Another worker, or an inline run, holds the thread now: the run stays as it is.
            raise Lost
        cur = await conn.execute(
            "UPDATE agent_run_queue SET attempts = attempts + 1, worker = %s "
            "WHERE run_id = %s RETURNING kwargs, stateless, attempts",
            (worker, run_id),
        )
        queued = await cur.fetchone()
        cur = await conn.execute(
            f"SELECT {_COLUMNS} {_FROM} WHERE r.run_id = %s",
            (run_id,),
        )
        run_row = await cur.fetchone()
        assert queued is not None
        assert run_row is not None
        return QueuedRun(
            run=_run(run_row),
            kwargs=dict(queued["kwargs"]),
            stateless=bool(queued["stateless"]),
            attempts=int(queued["attempts"]),
        )

    async def get_run(self, run_id: str, owner: str) -> RunRecord | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} {_FROM} WHERE r.run_id = %s AND r.owner = %s",
                (run_id, owner),
            )
            row = await cur.fetchone()
        return None if row is None else _run(row)

    async def list_runs(self, query: RunListQuery) -> list[RunRecord]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT * FROM (SELECT {_COLUMNS} {_FROM} "  # noqa: S608
                "WHERE r.thread_id = %s AND r.owner = %s) AS live "
                "WHERE %s::text IS NULL OR status = %s "
                "ORDER BY created_at DESC, run_id LIMIT %s OFFSET %s",
                (
                    query.thread_id,
                    query.owner,
                    query.status,
                    query.status,
                    query.limit,
                    query.offset,
                ),
            )
            return [_run(row) for row in await cur.fetchall()]

    async def active_run_ids(self, thread_id: str) -> list[str]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT run_id FROM (SELECT {_COLUMNS} {_FROM} "  # noqa: S608
                "WHERE r.thread_id = %s AND r.status IN ('pending', 'running')) AS live "
                "WHERE status IN ('pending', 'running') ORDER BY created_at",
                (thread_id,),
            )
            return [row["run_id"] for row in await cur.fetchall()]

    async def cancel_pending(self, run_ids: list[str], *, delete: bool) -> list[str]:
        async with self._pool.connection() as conn:
            # Only what no worker has claimed: the row lock a claim holds makes this wait.
            if delete:
                cur = await conn.execute(
                    "DELETE FROM agent_runs WHERE run_id = ANY(%s) AND status = 'pending' "
                    "RETURNING run_id",
                    (run_ids,),
                )
            else:
                cur = await conn.execute(
                    "UPDATE agent_runs SET status = 'interrupted', updated_at = now() "
                    "WHERE run_id = ANY(%s) AND status = 'pending' RETURNING run_id",
                    (run_ids,),
                )
            return [row["run_id"] for row in await cur.fetchall()]

    async def request_cancel(self, run_id: str, action: CancelAction) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO agent_run_cancels (run_id, action) VALUES (%s, %s) "
                "ON CONFLICT (run_id) DO UPDATE SET action = EXCLUDED.action",
                (run_id, action),
            )

    async def cancel_requests(self, run_ids: list[str]) -> dict[str, CancelAction]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT run_id, action FROM agent_run_cancels WHERE run_id = ANY(%s)",
                (run_ids,),
            )
            return {row["run_id"]: row["action"] for row in await cur.fetchall()}

    async def set_output(self, run_id: str, output: Any) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE agent_run_queue SET output = %s WHERE run_id = %s",
                (Jsonb(output), run_id),
            )

    async def get_output(self, run_id: str) -> tuple[bool, Any]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT output FROM agent_run_queue WHERE run_id = %s", (run_id,)
            )
            row = await cur.fetchone()
        return (False, None) if row is None else (True, row["output"])

    async def queued_kwargs(self, run_id: str) -> dict[str, Any] | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT kwargs FROM agent_run_queue WHERE run_id = %s", (run_id,)
            )
            row = await cur.fetchone()
        return None if row is None else dict(row["kwargs"])

    async def delete_run(self, run_id: str, owner: str) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM agent_runs WHERE run_id = %s AND owner = %s "
                "AND status NOT IN ('pending', 'running')",
                (run_id, owner),
            )
            return cur.rowcount > 0

    async def rollback_run(self, thread_id: str, run_id: str) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            # LangGraph's checkpointers record the run in each checkpoint's metadata.
            await conn.execute(
                "DELETE FROM checkpoint_writes AS w USING checkpoints AS c "
                "WHERE c.thread_id = %s AND c.metadata ->> 'run_id' = %s "
                "AND w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns "
                "AND w.checkpoint_id = c.checkpoint_id",
                (thread_id, run_id),
            )
            await conn.execute(
                "DELETE FROM checkpoints WHERE thread_id = %s AND metadata ->> 'run_id' = %s",
                (thread_id, run_id),
            )
            await conn.execute("DELETE FROM agent_runs WHERE run_id = %s", (run_id,))

    async def runs_matching(
        self, owner: str, thread_id: str | None, run_ids: list[str] | None, statuses: list[str]
    ) -> list[RunRecord]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT * FROM (SELECT {_COLUMNS} {_FROM} WHERE r.owner = %s "  # noqa: S608
                "AND (%s::text IS NULL OR r.thread_id = %s) "
                "AND (%s::text[] IS NULL OR r.run_id = ANY(%s))) AS live "
                "WHERE status = ANY(%s) ORDER BY created_at",
                (owner, thread_id, thread_id, run_ids, run_ids, statuses),
            )
            return [_run(row) for row in await cur.fetchall()]

    async def depth(self) -> int:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(DISTINCT q.thread_id) AS n FROM agent_run_queue AS q "
                "JOIN agent_runs AS r ON r.run_id = q.run_id "
                "WHERE r.status = 'pending' AND q.run_after <= now()"
            )
            row = await cur.fetchone()
        return 0 if row is None else int(row["n"])

    async def owner_active_count(self, owner: str) -> int:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) AS n FROM agent_run_queue AS q "
                "JOIN agent_runs AS r ON r.run_id = q.run_id "
                "WHERE r.owner = %s AND r.status IN ('pending', 'running')",
                (owner,),
            )
            row = await cur.fetchone()
        return 0 if row is None else int(row["n"])

    async def hand_back(self, run_id: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE agent_run_queue SET attempts = greatest(attempts - 1, 0) WHERE run_id = %s",
                (run_id,),
            )

    async def renew_claim(
        self, thread_id: str, run_id: str, attempt: int, lease_seconds: float
    ) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE agent_threads SET lease_expires_at = now() + make_interval(secs => %s) "
                "WHERE thread_id = %s AND active_run_id = %s AND EXISTS ("
                "SELECT 1 FROM agent_run_queue WHERE run_id = %s AND attempts = %s)",
                (lease_seconds, thread_id, run_id, run_id, attempt),
            )
            return cur.rowcount == 1
