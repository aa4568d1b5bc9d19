"""Checkpointers that write only while the run's thread still belongs to the run's user.

A run keeps writing checkpoints as it goes. When its thread is deleted meanwhile (a GDPR
delete, a thread delete on another replica), or its id is already someone else's, every
further write would put the old owner's data back under an id that someone else can create.
So each write first looks up the thread's owner and refuses when it is not the run's user:
the run ends with `ThreadGone` and nothing more is stored. The lookup costs one indexed
primary-key read per checkpoint write. On PostgreSQL it is the first statement of the write's
own transaction (`PooledPostgresSaver.before_write`): `agent_require_thread_owner` (migration
6) fails when the owner differs, which aborts the transaction, so the check adds neither a
transaction, nor a connection checkout, nor a round trip (the superstep's statements follow it
in the same pipeline without waiting for its answer), and a failing check rolls the whole
superstep's write back.

Writes without a `user_id` in `configurable` are the service's own (tests, tools): unguarded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
)
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from psycopg import AsyncCursor
from psycopg import Error as PsycopgError
from psycopg.rows import DictRow

from agent_service.persistence.saver import PooledPostgresSaver, Superstep
from agent_service.persistence.schema import THREAD_GONE_SQLSTATE

OwnerLookup = Callable[[str], Awaitable[str | None]]


class ThreadGone(Exception):
    """The run's thread was deleted (or is no longer its user's): the run must stop."""


def _guarded(config: RunnableConfig) -> tuple[str, str] | None:
    """(thread_id, user_id) when the write is a run's, else None (unguarded)."""
    configurable = config.get("configurable") or {}
    user_id = configurable.get("user_id")
    thread_id = configurable.get("thread_id")
    if user_id is None or thread_id is None:
        return None
    return str(thread_id), str(user_id)


def _gone(thread_id: str) -> ThreadGone:
    return ThreadGone(f"thread {thread_id!r} was deleted while the run was going")


async def check_owner(owner_of: OwnerLookup, config: RunnableConfig) -> None:
    """Refuse (ThreadGone) unless the run's thread still belongs to the run's user."""
    guarded = _guarded(config)
    if guarded is not None and await owner_of(guarded[0]) != guarded[1]:
        raise _gone(guarded[0])


class OwnerGuard(BaseCheckpointSaver[str]):
    """The check before each write, for any saver: put first in the bases, before the saver."""

    owner_of: OwnerLookup

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        await check_owner(self.owner_of, config)
        return await super().aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await check_owner(self.owner_of, config)
        await super().aput_writes(config, writes, task_id, task_path)


class GuardedPostgresSaver(PooledPostgresSaver):
    """The owner check as the first statement of each write transaction."""

    async def before_write(self, cur: AsyncCursor[DictRow], config: RunnableConfig) -> None:
        guarded = _guarded(config)
        if guarded is None:
            return
        # Not read back: a wrong owner fails the statement and with it the transaction.
        await cur.execute("SELECT agent_require_thread_owner(%s, %s)", guarded)

    async def _write(
        self,
        config: RunnableConfig,
        writes: Sequence[Any],
        checkpoint: Superstep | None = None,
    ) -> None:
        try:
            await super()._write(config, writes, checkpoint)
        except PsycopgError as exc:
            guarded = _guarded(config)
            if guarded is not None and exc.sqlstate == THREAD_GONE_SQLSTATE:
                raise _gone(guarded[0]) from None
            raise


class GuardedSqliteSaver(OwnerGuard, AsyncSqliteSaver):
    pass
