"""The PostgreSQL checkpointer: lock-free on a pool, one transaction per superstep.

Lock-free: `AsyncPostgresSaver` holds one `asyncio.Lock` around every call, even when its
connection is a pool; every checkpoint read and write of the whole process then waits in one
line. The lock protects a single shared connection. On a pool, each `_cursor()` checks out a
connection of its own that no other coroutine uses until it is returned, so there is nothing
to protect (the upstream `AsyncPostgresStore` drops the lock for pools the same way).

One transaction per superstep: LangGraph's loop saves each finished task's writes
(`aput_writes`, in the background) and, at the end of the superstep, the next checkpoint
(`aput`; with `durability="sync"` the loop waits for it before the next superstep starts:
"Changes are persisted synchronously before the next step starts",
https://reference.langchain.com/python/langgraph/types/Durability and
https://docs.langchain.com/oss/python/langgraph/durable-execution#durability-modes). Upstream
each call is a transaction of its own. Here a task's writes wait up to `coalesce_seconds` for
the next checkpoint of the same thread and namespace and are written in its transaction:
writes, blobs and checkpoint row in one pipelined round trip, all or nothing. So `sync` still
means the superstep is on disk (its writes with it) before the next starts. Writes that no
checkpoint follows in time (an interrupt, a failing task, a sibling task still running) are
written alone when the window ends, as upstream writes them: the pending writes of a superstep
that failed part-way are still stored, so its successful tasks do not run again on resume
(https://docs.langchain.com/oss/python/langgraph/persistence#pending-writes).

`before_write` runs inside that transaction first: `persistence.guard` checks there that the
thread still belongs to the run's user, with no transaction or round trip of its own.

Prepared statements stay off (`pool.CONNECTION_KWARGS`): the saver's few statements are cheap
to plan, and a statement prepared on a server connection breaks behind PgBouncer in
transaction mode (https://www.pgbouncer.org/features.html, "prepared statements" needs
PgBouncer >= 1.21 with max_prepared_statements) and after a failover to a fresh server.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg import AsyncCursor
from psycopg import Error as PsycopgError
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from agent_service.persistence.pool import Pool

# A superstep's checkpoint as `aput` hands it to `_write`: the blob rows and the checkpoint row.
Superstep = tuple[list[tuple[Any, ...]], tuple[Any, ...]]

# How long a task's writes wait for the superstep's checkpoint. The loop saves the checkpoint
# right after the superstep's last task ends, so on a single-task superstep they meet within a
# few event-loop turns; the window only bounds the wait when no checkpoint follows.
COALESCE_SECONDS = 0.05


class _NoLock(asyncio.Lock):
    """Stands in for the saver's lock: entering never waits."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


@dataclass
class _Writes:
    """One `aput_writes` call, serialized, waiting for a transaction to carry it."""

    config: RunnableConfig
    query: str
    params: list[tuple[Any, ...]]
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _settle(entries: Sequence[_Writes], error: BaseException | None) -> None:
    for entry in entries:
        if entry.done.done():
            continue
        if error is None:
            entry.done.set_result(None)
        else:
            entry.done.set_exception(error)
            # Read here so an entry nobody awaits any more (its task was cancelled) does not
            # log "exception was never retrieved"; its awaiting task still gets it.
            entry.done.exception()


class PooledPostgresSaver(AsyncPostgresSaver):
    """`AsyncPostgresSaver` whose calls run concurrently, one pooled connection each, and whose
    superstep (task writes + blobs + checkpoint) is one transaction."""

    def __init__(
        self,
        pool: Pool,
        *,
        serde: SerializerProtocol | None = None,
        coalesce_seconds: float = COALESCE_SECONDS,
    ) -> None:
        if not isinstance(pool, AsyncConnectionPool):
            raise TypeError("PooledPostgresSaver needs an AsyncConnectionPool")
        super().__init__(pool, serde=serde)
        self._pool = pool
        self.lock = _NoLock()
        self.coalesce_seconds = coalesce_seconds
        self._pending: dict[tuple[str, str], list[_Writes]] = {}

    async def before_write(self, cur: AsyncCursor[DictRow], config: RunnableConfig) -> None:
        """Runs first in every write transaction; raising rolls it back. Nothing here."""

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncCursor[DictRow]]:
        """BEGIN, the caller's statements and COMMIT sent as one pipeline: one round trip (the
        Sync as the pipeline closes). psycopg's `transaction()` would add three: it syncs after
        BEGIN, before COMMIT and after it. A statement that fails makes the server skip the
        rest, COMMIT included, up to the Sync ("Pipelining",
        https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-PIPELINING), and
        the failed block is rolled back here, as is one a Python error left open."""
        async with self._pool.connection() as conn:
            try:
                async with (
                    conn.pipeline(),
                    conn.cursor(binary=True, row_factory=dict_row) as cur,
                ):
                    await cur.execute("BEGIN")
                    yield cur
                    await cur.execute("COMMIT")
            except BaseException:
                if conn.pgconn.transaction_status != TransactionStatus.IDLE:
                    # As psycopg's `transaction()` does: a rollback that fails (the connection
                    # is lost, and the pool discards it) must not replace what ended the
                    # block, least of all a cancellation (asyncio.timeout and the run's
                    # cancel read CancelledError).
                    with suppress(PsycopgError):
                        await conn.rollback()
                raise

    async def _write(
        self,
        config: RunnableConfig,
        writes: Sequence[_Writes],
        checkpoint: Superstep | None = None,
    ) -> None:
        async with self._transaction() as cur:
            await self.before_write(cur, config)
            for entry in writes:
                await cur.executemany(entry.query, entry.params)
            if checkpoint is not None:
                blobs, row = checkpoint
                if blobs:
                    await cur.executemany(self.UPSERT_CHECKPOINT_BLOBS_SQL, blobs)
                await cur.execute(self.UPSERT_CHECKPOINTS_SQL, row)

    def _take(self, key: tuple[str, str], entry: _Writes) -> bool:
        """Remove `entry` from the waiting writes; False when a checkpoint already took it."""
        waiting = self._pending.get(key)
        if waiting is None or entry not in waiting:
            return False
        waiting.remove(entry)
        if not waiting:
            del self._pending[key]
        return True

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        checkpoint_ns = str(configurable.get("checkpoint_ns", ""))
        query = (
            self.UPSERT_CHECKPOINT_WRITES_SQL
            if all(w[0] in WRITES_IDX_MAP for w in writes)
            else self.INSERT_CHECKPOINT_WRITES_SQL
        )
        # Serialized and queued before the first await: the loop calls this before it saves
        # the superstep's checkpoint, so the checkpoint finds these writes waiting.
        entry = _Writes(
            config,
            query,
            list(
                self._dump_writes(
                    thread_id,
                    checkpoint_ns,
                    configurable["checkpoint_id"],
                    task_id,
                    task_path,
                    writes,
                )
            ),
        )
        key = (thread_id, checkpoint_ns)
        self._pending.setdefault(key, []).append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(entry.done), self.coalesce_seconds)
            return
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            self._take(key, entry)
            raise
        if not self._take(key, entry):
            # A checkpoint took them as the window closed: its outcome is theirs.
            await entry.done
            return
        try:
            await self._write(config, [entry])
        except BaseException as exc:
            _settle([entry], exc)
            raise
        _settle([entry], None)

    async def _load_checkpoint_tuple(self, value: DictRow) -> CheckpointTuple:
        """Upstream's tuple, built without its thread hop when there are no pending writes
        (the usual case: they remain only after an interrupted or failed superstep).
        Upstream always deserializes the pending writes with `asyncio.to_thread`, an
        executor round trip on every run's first read; `test_saver` checks the two tuples
        stay equal."""
        if value["pending_writes"]:
            return await super()._load_checkpoint_tuple(value)
        thread_id, checkpoint_ns = value["thread_id"], value["checkpoint_ns"]
        parent_id = value["parent_checkpoint_id"]
        return CheckpointTuple(
            {
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": checkpoint_ns,
                    "checkpoint_id": value["checkpoint_id"],
                }
            },
            cast(
                Checkpoint,
                {
                    **value["checkpoint"],
                    "channel_values": {
                        **(value["checkpoint"].get("channel_values") or {}),
                        **self._load_blobs(value["channel_values"]),
                    },
                },
            ),
            value["metadata"],
            (
                {
                    "configurable": {
                        "thread_id": thread_id,
                        "checkpoint_ns": checkpoint_ns,
                        "checkpoint_id": parent_id,
                    }
                }
                if parent_id
                else None
            ),
            [],
        )

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        # The same rows as AsyncPostgresSaver.aput (langgraph-checkpoint-postgres): primitive
        # channel values inline in the checkpoint, the others as blobs of their new version.
        configurable = dict(config["configurable"])
        thread_id = configurable.pop("thread_id")
        checkpoint_ns = configurable.pop("checkpoint_ns")
        parent_id = configurable.pop("checkpoint_id", None)
        stored = checkpoint.copy()
        stored["channel_values"] = dict(checkpoint["channel_values"])
        blob_values: dict[str, Any] = {}
        for name, value in checkpoint["channel_values"].items():
            if isinstance(value, _DeltaSnapshot):
                blob_values[name] = stored["channel_values"].pop(name)
                stored["channel_values"][name] = True
            elif value is None or isinstance(value, str | int | float | bool):
                continue
            else:
                blob_values[name] = stored["channel_values"].pop(name)
        blob_versions = {k: v for k, v in new_versions.items() if k in blob_values}
        blobs = (
            self._dump_blobs(thread_id, checkpoint_ns, blob_values, blob_versions)
            if blob_versions
            else []
        )
        row = (
            thread_id,
            checkpoint_ns,
            checkpoint["id"],
            parent_id,
            Jsonb(stored),
            Jsonb(get_serializable_checkpoint_metadata(config, metadata)),
        )
        taken = self._pending.pop((str(thread_id), str(checkpoint_ns)), [])
        try:
            await self._write(config, taken, (list(blobs), row))
        except BaseException as exc:
            _settle(taken, exc)
            raise
        _settle(taken, None)
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }


# LangGraph asks `inspect.signature` of the saver's `aput_writes` whether it takes `task_path`,
# on every run (`AsyncPregelLoop.__init__`, langgraph/pregel/_checkpoint.py
# put_writes_accepts_task_path): about 12 us each time, 3.5 us once the function carries its
# `__signature__`, which `inspect.signature` returns without re-reading the function.
PooledPostgresSaver.aput_writes.__signature__ = inspect.signature(  # type: ignore[attr-defined]
    PooledPostgresSaver.aput_writes
)
