"""Stores that write for a run only while the run's thread still belongs to the run's user:
the checkpoint guard's rule (`persistence.guard`) for the graphs' store writes.

A run on another replica keeps going after its user's GDPR delete (or its thread's delete)
until its next checkpoint write fails; a memory it saves meanwhile would outlive the delete.
So a write made inside a run (LangGraph's run config is in context) first looks up the run's
thread owner and refuses with `ThreadGone` when it is not the run's user. Writes outside a run
(the Store API, `migrate`, the GDPR delete itself) carry no run config and are not checked.
The owner is looked up before and after the write (which embeds first, for seconds on the
model's first use); when the thread went meanwhile, the item is deleted again. An item the run
overwrote is then gone too: the user's thread or the user was being deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config
from langgraph.store.base import NOT_PROVIDED, NotProvided
from langgraph.store.base.batch import AsyncBatchedBaseStore
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph.store.sqlite.aio import AsyncSqliteStore

from agent_service.persistence.guard import OwnerLookup, ThreadGone, check_owner


def _run_config() -> RunnableConfig | None:
    try:
        return get_config()
    except RuntimeError:  # not inside a run
        return None


class StoreOwnerGuard(AsyncBatchedBaseStore):
    """The check around each put; put first in the bases, before the store. `aput`, not
    `abatch`: LangGraph's stores queue puts to a background task, where the run's context
    (its config) is no longer visible."""

    owner_of: OwnerLookup | None = None

    async def aput(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> None:
        config = _run_config() if self.owner_of is not None else None
        if config is None or self.owner_of is None:
            await super().aput(namespace, key, value, index, ttl=ttl)
            return
        await check_owner(self.owner_of, config)
        await super().aput(namespace, key, value, index, ttl=ttl)
        try:
            # Again after: a put embeds before it writes (seconds on the model's first use in
            # a process), long enough for a delete to pass in between.
            await check_owner(self.owner_of, config)
        except ThreadGone:
            await super().adelete(namespace, key)
            raise


class GuardedPostgresStore(StoreOwnerGuard, AsyncPostgresStore):
    pass


class GuardedSqliteStore(StoreOwnerGuard, AsyncSqliteStore):
    pass
