"""The service tables on PostgreSQL, through the process's pool. Parameterised SQL only."""

from __future__ import annotations

from typing import Any

from psycopg import sql
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from agent_service.persistence.assistant_tables import PostgresAssistants
from agent_service.persistence.pool import Pool
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
from agent_service.persistence.schema import (
    CHECKPOINT_TABLES_POSTGRES,
    LANGGRAPH_TABLES,
    SERVICE_FUNCTIONS,
    SERVICE_TABLES,
)

# A run that died (SIGKILL, lost node) leaves `busy` behind; once its lease has expired the
# thread is not busy any more, for every reader: it reports `error` (its last run failed).
_STATUS = "CASE WHEN status = 'busy' AND lease_expires_at < now() THEN 'error' ELSE status END"
_THREAD_COLUMNS = (
    f"thread_id, owner, graph_id, metadata, {_STATUS} AS status, created_at, updated_at, "
    "ttl_minutes"
)
# A thread past its TTL and not running: what `retention` deletes.
_EXPIRED = (
    "ttl_minutes IS NOT NULL AND updated_at + make_interval(secs => ttl_minutes * 60) < now() "
    "AND (status <> 'busy' OR lease_expires_at IS NULL OR lease_expires_at < now())"
)

_RUN_COLUMNS = (
    "run_id, thread_id, owner, assistant_id, graph_id, status, metadata, "
    "multitask_strategy, error, created_at, updated_at"
)


# acquire_thread + set_thread_graph + create_run in one statement (`start_run`), which also
# reads the thread as its owner sees it (`target`, the statement's snapshot) so the engine can
# say why a run did not start without a read of its own before the claim.
_START_RUN = (
    "WITH target AS ("  # noqa: S608 - column names from a constant, values as parameters
    " SELECT graph_id FROM agent_threads"
    " WHERE thread_id = %(thread_id)s AND owner = %(owner)s), "
    "claimed AS ("
    " UPDATE agent_threads SET status = 'busy', active_run_id = %(run_id)s,"
    " lease_expires_at = now() + make_interval(secs => %(lease)s),"
    " graph_id = COALESCE(graph_id, %(graph_id)s), updated_at = now()"
    " WHERE thread_id = %(thread_id)s AND owner = %(owner)s"
    " AND (graph_id IS NULL OR graph_id = %(graph_id)s)"
    " AND (status <> 'busy' OR lease_expires_at IS NULL OR lease_expires_at < now())"
    # A queued run that no worker has finished holds the thread for `reject` (what
    # run_queue's active_run_ids lists, less the runs the lease test above already covers).
    " AND NOT (%(queued_holds)s AND EXISTS ("
    "  SELECT 1 FROM agent_run_queue AS q JOIN agent_runs AS r ON r.run_id = q.run_id"
    "  WHERE q.thread_id = %(thread_id)s AND r.status IN ('pending', 'running')))"
    " RETURNING thread_id), "
    f"started AS (INSERT INTO agent_runs ({_RUN_COLUMNS}) "
    "SELECT %(run_id)s, thread_id, %(owner)s, %(assistant_id)s, %(graph_id)s,"
    " %(status)s, %(metadata)s, %(multitask_strategy)s, %(error)s, %(created_at)s,"
    " %(updated_at)s FROM claimed RETURNING run_id) "
    "SELECT EXISTS (SELECT 1 FROM started) AS started,"
    " EXISTS (SELECT 1 FROM target) AS thread_found,"
    " (SELECT graph_id FROM target) AS thread_graph_id"
)


# A run still `running` whose thread no longer holds it under a live lease died with its
# process: it reports `error`.
_RUN_COLUMNS_LIVE = (
    "r.run_id, r.thread_id, r.owner, r.assistant_id, r.graph_id, "
    "CASE WHEN r.status IN ('pending', 'running') AND (t.active_run_id IS DISTINCT FROM r.run_id "
    "OR t.lease_expires_at < now()) THEN 'error' ELSE r.status END AS status, "
    "r.metadata, r.multitask_strategy, r.error, r.created_at, r.updated_at"
)


def _thread(row: DictRow) -> ThreadRecord:
    return ThreadRecord(**row)


def _run(row: DictRow) -> RunRecord:
    return RunRecord(**row)


class PostgresTables(PostgresAssistants):
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def ping(self) -> None:
        async with self._pool.connection() as conn:
            await conn.execute("SELECT 1")

    async def missing_tables(self) -> list[str]:
        names = [*SERVICE_TABLES, *LANGGRAPH_TABLES]
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NULL "
                "UNION ALL "
                "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regprocedure(name) IS NULL",
                (names, list(SERVICE_FUNCTIONS)),
            )
            return [row["name"] for row in await cur.fetchall()]

    async def create_thread(
        self, thread_id: str, owner: str, metadata: dict[str, Any], graph_id: str | None
    ) -> ThreadRecord:
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"INSERT INTO agent_threads (thread_id, owner, graph_id, metadata) "  # noqa: S608
                f"VALUES (%s, %s, %s, %s) ON CONFLICT (thread_id) DO NOTHING "
                f"RETURNING {_THREAD_COLUMNS}",
                (thread_id, owner, graph_id, Jsonb(metadata)),
            )
            row = await cur.fetchone()
            if row is None:
                raise ThreadExistsError(thread_id)
            # A new thread has no history: whatever is stored under its id is what a deleted
            # thread of the same id left behind, and must never reach the new owner.
            for table in CHECKPOINT_TABLES_POSTGRES:
                await conn.execute(
                    sql.SQL("DELETE FROM {} WHERE thread_id = %s").format(sql.Identifier(table)),
                    (thread_id,),
                )
        return _thread(row)

    async def thread_owner(self, thread_id: str) -> str | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT owner FROM agent_threads WHERE thread_id = %s", (thread_id,)
            )
            row = await cur.fetchone()
        return None if row is None else str(row["owner"])

    async def get_thread(self, thread_id: str, owner: str) -> ThreadRecord | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_THREAD_COLUMNS} FROM agent_threads "  # noqa: S608
                "WHERE thread_id = %s AND owner = %s",
                (thread_id, owner),
            )
            row = await cur.fetchone()
        return None if row is None else _thread(row)

    @staticmethod
    def _thread_filter(query: ThreadQuery) -> tuple[list[sql.Composable], list[Any]]:
        clauses: list[sql.Composable] = [sql.SQL("owner = %s")]
        params: list[Any] = [query.owner]
        if query.metadata:
            clauses.append(sql.SQL("metadata @> %s"))
            params.append(Jsonb(query.metadata))
        if query.ids is not None:
            clauses.append(sql.SQL("thread_id = ANY(%s)"))
            params.append(query.ids)
        if query.status is not None:
            clauses.append(sql.SQL(f"{_STATUS} = %s"))
            params.append(query.status)
        return clauses, params

    async def count_threads(self, query: ThreadQuery) -> int:
        clauses, params = self._thread_filter(query)
        statement = sql.SQL("SELECT count(*) AS n FROM agent_threads WHERE {where}").format(
            where=sql.SQL(" AND ").join(clauses)
        )
        async with self._pool.connection() as conn:
            cur = await conn.execute(statement, params)
            row = await cur.fetchone()
        return 0 if row is None else int(row["n"])

    async def update_thread(
        self, thread_id: str, owner: str, metadata: dict[str, Any], ttl: TtlChange
    ) -> ThreadRecord | None:
        keep = ttl == KEEP_TTL
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"UPDATE agent_threads SET metadata = metadata || %s, "  # noqa: S608
                "ttl_minutes = CASE WHEN %s THEN ttl_minutes ELSE %s END, updated_at = now() "
                f"WHERE thread_id = %s AND owner = %s RETURNING {_THREAD_COLUMNS}",
                (Jsonb(metadata), keep, None if keep else ttl, thread_id, owner),
            )
            row = await cur.fetchone()
        return None if row is None else _thread(row)

    async def search_threads(self, query: ThreadQuery) -> list[ThreadRecord]:
        clauses, params = self._thread_filter(query)
        # sort_by and sort_order are validated Literals; they still go in as an identifier
        # and a keyword from a fixed table, never as text from the request.
        order = sql.SQL("DESC") if query.sort_order == "desc" else sql.SQL("ASC")
        statement = sql.SQL(
            "SELECT {columns} FROM agent_threads WHERE {where} "
            "ORDER BY {sort} {order}, thread_id LIMIT %s OFFSET %s"
        ).format(
            columns=sql.SQL(_THREAD_COLUMNS),
            where=sql.SQL(" AND ").join(clauses),
            sort=sql.Identifier(query.sort_by),
            order=order,
        )
        params += [query.limit, query.offset]
        async with self._pool.connection() as conn:
            cur = await conn.execute(statement, params)
            return [_thread(row) for row in await cur.fetchall()]

    async def delete_thread(self, thread_id: str, owner: str) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM agent_threads WHERE thread_id = %s AND owner = %s",
                (thread_id, owner),
            )
            return cur.rowcount > 0

    async def set_thread_graph(self, thread_id: str, owner: str, graph_id: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE agent_threads SET graph_id = %s, updated_at = now() "
                "WHERE thread_id = %s AND owner = %s AND graph_id IS NULL",
                (graph_id, thread_id, owner),
            )

    async def acquire_thread(
        self, thread_id: str, owner: str, run_id: str, lease_seconds: float
    ) -> bool:
        # One statement decides, so two replicas racing for the same thread cannot both win;
        # an expired lease (its holder crashed) is taken over.
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE agent_threads SET status = 'busy', active_run_id = %s, "
                "lease_expires_at = now() + make_interval(secs => %s), updated_at = now() "
                "WHERE thread_id = %s AND owner = %s "
                "AND (status <> 'busy' OR lease_expires_at IS NULL OR lease_expires_at < now())",
                (run_id, lease_seconds, thread_id, owner),
            )
            return cur.rowcount == 1

    async def renew_lease(self, thread_id: str, run_id: str, lease_seconds: float) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE agent_threads SET lease_expires_at = now() + make_interval(secs => %s) "
                "WHERE thread_id = %s AND active_run_id = %s",
                (lease_seconds, thread_id, run_id),
            )

    async def release_thread(self, thread_id: str, run_id: str, status: ThreadStatus) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE agent_threads SET status = %s, active_run_id = NULL, "
                "lease_expires_at = NULL, updated_at = now() "
                "WHERE thread_id = %s AND active_run_id = %s",
                (status, thread_id, run_id),
            )

    async def create_run(self, run: RunRecord) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                f"INSERT INTO agent_runs ({_RUN_COLUMNS}) "  # noqa: S608
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    run.run_id,
                    run.thread_id,
                    run.owner,
                    run.assistant_id,
                    run.graph_id,
                    run.status,
                    Jsonb(run.metadata),
                    run.multitask_strategy,
                    run.error,
                    run.created_at,
                    run.updated_at,
                ),
            )

    async def finish_run(self, run_id: str, status: RunStatus, error: str | None) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE agent_runs SET status = %s, error = %s, updated_at = now() "
                "WHERE run_id = %s",
                (status, error, run_id),
            )

    async def start_run(
        self, run: RunRecord, lease_seconds: float, *, queued_holds: bool = False
    ) -> RunStart:
        # One statement: the lease decides (as in acquire_thread), the thread gets its graph
        # when it has none, and the run's row exists exactly when the lease was won.
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                _START_RUN,
                {
                    "run_id": run.run_id,
                    "thread_id": run.thread_id,
                    "owner": run.owner,
                    "assistant_id": run.assistant_id,
                    "graph_id": run.graph_id,
                    "status": run.status,
                    "metadata": Jsonb(run.metadata),
                    "multitask_strategy": run.multitask_strategy,
                    "error": run.error,
                    "created_at": run.created_at,
                    "updated_at": run.updated_at,
                    "lease": lease_seconds,
                    "queued_holds": queued_holds,
                },
            )
            row = await cur.fetchone()
        assert row is not None  # a SELECT without FROM answers one row
        return RunStart(
            started=bool(row["started"]),
            thread_found=bool(row["thread_found"]),
            thread_graph_id=row["thread_graph_id"],
        )

    async def end_run(
        self,
        run_id: str,
        thread_id: str,
        status: RunStatus,
        error: str | None,
        thread_status: ThreadStatus,
    ) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "WITH finished AS ("
                " UPDATE agent_runs SET status = %s, error = %s, updated_at = now()"
                " WHERE run_id = %s) "
                "UPDATE agent_threads SET status = %s, active_run_id = NULL, "
                "lease_expires_at = NULL, updated_at = now() "
                "WHERE thread_id = %s AND active_run_id = %s",
                (status, error, run_id, thread_status, thread_id, run_id),
            )

    async def get_run(self, run_id: str, owner: str) -> RunRecord | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_RUN_COLUMNS_LIVE} FROM agent_runs AS r "  # noqa: S608
                "LEFT JOIN agent_threads AS t ON t.thread_id = r.thread_id "
                "WHERE r.run_id = %s AND r.owner = %s",
                (run_id, owner),
            )
            row = await cur.fetchone()
        return None if row is None else _run(row)

    async def user_threads(self, owner: str) -> list[ThreadRecord]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_THREAD_COLUMNS} FROM agent_threads "  # noqa: S608
                "WHERE owner = %s ORDER BY created_at",
                (owner,),
            )
            return [_thread(row) for row in await cur.fetchall()]

    async def user_runs(self, owner: str) -> list[RunRecord]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM agent_runs WHERE owner = %s ORDER BY created_at",  # noqa: S608
                (owner,),
            )
            return [_run(row) for row in await cur.fetchall()]

    async def audit(
        self, principal: str, action: str, subject: str, detail: dict[str, Any]
    ) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO agent_audit_log (principal, action, subject, detail) "
                "VALUES (%s, %s, %s, %s)",
                (principal, action, subject, Jsonb(detail)),
            )

    async def audit_entries(self, subject: str) -> list[AuditRecord]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT at, principal, action, subject, detail FROM agent_audit_log "
                "WHERE subject = %s ORDER BY at, id",
                (subject,),
            )
            return [AuditRecord(**row) for row in await cur.fetchall()]

    async def delete_user(self, owner: str) -> tuple[int, int]:
        async with self._pool.connection() as conn, conn.transaction():
            runs = await conn.execute("DELETE FROM agent_runs WHERE owner = %s", (owner,))
            threads = await conn.execute("DELETE FROM agent_threads WHERE owner = %s", (owner,))
            return threads.rowcount, runs.rowcount

    # ----- retention (`persistence.retention`) --------------------------------------------

    async def idle_thread_ids(self, days: int, limit: int) -> list[str]:
        """Threads not updated for `days` and not running, oldest first."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """
                SELECT thread_id FROM agent_threads
                WHERE updated_at < now() - make_interval(days => %s)
                  AND (status <> 'busy' OR lease_expires_at IS NULL OR lease_expires_at < now())
                ORDER BY updated_at
                LIMIT %s
                """,
                (days, limit),
            )
            return [row["thread_id"] for row in await cur.fetchall()]

    async def claim_idle_thread(self, thread_id: str, days: int) -> bool:
        """Delete the thread's row only while it is still idle past the horizon: a thread
        used again since `idle_thread_ids` is kept. True when this call deleted it."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """
                DELETE FROM agent_threads
                WHERE thread_id = %s AND updated_at < now() - make_interval(days => %s)
                  AND (status <> 'busy' OR lease_expires_at IS NULL OR lease_expires_at < now())
                RETURNING thread_id
                """,
                (thread_id, days),
            )
            return await cur.fetchone() is not None

    async def expired_thread_ids(self, _days: int, limit: int) -> list[str]:
        """Threads past their own TTL (threads.create/update `ttl`), oldest first."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT thread_id FROM agent_threads WHERE {_EXPIRED} "  # noqa: S608
                "ORDER BY updated_at LIMIT %s",
                (limit,),
            )
            return [row["thread_id"] for row in await cur.fetchall()]

    async def claim_expired_thread(self, thread_id: str) -> bool:
        """Delete the row only while the thread is still past its TTL (a run or an update
        since `expired_thread_ids` renews it). True when this call deleted it."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"DELETE FROM agent_threads WHERE thread_id = %s AND {_EXPIRED} "  # noqa: S608
                "RETURNING thread_id",
                (thread_id,),
            )
            return await cur.fetchone() is not None

    async def orphaned_checkpoint_threads(self, days: int, limit: int) -> list[str]:
        """Threads with checkpoints but no agent_threads row, the newest checkpoint older than
        `days`. Every thread gets its row before its first checkpoint, so these are what an
        interrupted retention run (or a delete) left behind; the age test spares anything new."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """
                SELECT c.thread_id FROM checkpoints AS c
                WHERE NOT EXISTS (SELECT 1 FROM agent_threads AS t WHERE t.thread_id = c.thread_id)
                GROUP BY c.thread_id
                HAVING max((c.checkpoint ->> 'ts')::timestamptz)
                    < now() - make_interval(days => %s)
                LIMIT %s
                """,
                (days, limit),
            )
            return [row["thread_id"] for row in await cur.fetchall()]
