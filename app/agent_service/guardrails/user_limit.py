"""A per-user budget of model calls per UTC day, across all of the user's threads and graphs.

The count lives in the Store (namespace per user), so every replica sees the same budget.
Two concurrent runs of one user may both pass at the boundary: the budget is a cost guard,
not a billing ledger, and a lock per call would cost more than the overshoot.

The agents' middleware counts through a `CallLedger`: a user's first call in a process, and
the first after SYNC_SECONDS, reads and writes the store as before; the calls in between are
counted in the process and written by one background flush. That was two store transactions
(a read that refreshes the item's TTL, then a write) on every model call, two of the eleven
of a main_agent turn. Within a process the budget stays exact; across replicas each one may
see the others' calls up to SYNC_SECONDS late, and a process that dies loses at most that
long of its count.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage
from langgraph.config import get_config
from langgraph.store.base import BaseStore

from agent_service.core.principal import USAGE_NAMESPACE, user_id_of
from agent_service.metrics import GUARDRAIL_EVENTS

log = structlog.get_logger(__name__)

COUNTER_TTL_MINUTES = 2 * 24 * 60


class ModelCallBudgetExceeded(Exception):
    """The user has used today's model calls; the message says so and when it resets."""


def limit_message(limit: int) -> str:
    return (
        f"You have reached today's limit of {limit} model calls. "
        "It resets at midnight UTC; ask an administrator to raise it if needed."
    )


def _slot(user_id: str) -> tuple[tuple[str, str], str]:
    return (USAGE_NAMESPACE, user_id), f"model_calls:{datetime.now(UTC).date().isoformat()}"


# Puts pass index=False: a count is never searched by meaning, and the store would otherwise
# embed every one (STORE_EMBEDDINGS), a model call's worth of CPU per model call.


def _ttl(store: BaseStore) -> float | None:
    # A day's counter is useless after the day; the store's TTL sweep removes it.
    return COUNTER_TTL_MINUTES if store.supports_ttl else None


async def consume_model_call(store: BaseStore | None, user_id: str, limit: int) -> bool:
    """Count one model call against the user's day; False (and nothing counted) when the day's
    budget is spent. Without a store (a graph compiled without one) there is no budget."""
    if store is None:
        return True
    namespace, key = _slot(user_id)
    item = await store.aget(namespace, key)
    used = int(item.value.get("count", 0)) if item else 0
    if used >= limit:
        GUARDRAIL_EVENTS.labels("user_model_call_limit", "limited").inc()
        return False
    await store.aput(namespace, key, {"count": used + 1}, ttl=_ttl(store), index=False)
    return True


SYNC_SECONDS = 1.0


@dataclass
class _Count:
    """One user's day in this process: the count last read from the store (`stored`) and
    the calls counted here since (`pending`)."""

    key: str
    stored: int = 0
    pending: int = 0
    synced_at: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    flush: asyncio.Task[None] | None = None


class CallLedger:
    def __init__(self, sync_seconds: float = SYNC_SECONDS) -> None:
        self.sync_seconds = sync_seconds
        # Per store object (a test's store, the process's store), per user.
        self._counts: weakref.WeakKeyDictionary[BaseStore, dict[str, _Count]] = (
            weakref.WeakKeyDictionary()
        )

    async def _read(self, store: BaseStore, user_id: str, count: _Count) -> None:
        namespace, key = _slot(user_id)
        item = await store.aget(namespace, key)
        count.stored = int(item.value.get("count", 0)) if item else 0

    async def _write(self, store: BaseStore, user_id: str, count: _Count) -> None:
        """Add what was counted here to the store's count (read just before)."""
        namespace, key = _slot(user_id)
        taking = count.pending
        await store.aput(
            namespace, key, {"count": count.stored + taking}, ttl=_ttl(store), index=False
        )
        count.stored += taking
        count.pending -= taking
        count.synced_at = time.monotonic()

    def _counts_of(self, store: BaseStore, user_id: str) -> _Count:
        users = self._counts.setdefault(store, {})
        _, key = _slot(user_id)
        count = users.get(user_id)
        if count is None or count.key != key:  # first call, or a new UTC day
            if len(users) > 10_000:
                for user in [u for u, c in users.items() if not c.pending]:
                    del users[user]
            count = users[user_id] = _Count(key)
        return count

    def _flush_later(self, store: BaseStore, user_id: str, count: _Count) -> None:
        if count.flush is not None and not count.flush.done():
            return

        async def flush() -> None:
            await asyncio.sleep(self.sync_seconds)
            try:
                async with count.lock:
                    if count.pending:
                        await self._read(store, user_id, count)
                        await self._write(store, user_id, count)
            except Exception as exc:
                # The store is away: the count stays pending for the next call's sync.
                log.warning("could not write the model-call count", reason=type(exc).__name__)

        count.flush = asyncio.get_running_loop().create_task(flush())

    async def consume(self, store: BaseStore | None, user_id: str, limit: int) -> bool:
        """Like `consume_model_call`, through this process's count."""
        if store is None:
            return True
        count = self._counts_of(store, user_id)
        async with count.lock:
            # Due: read and write the store around this call, as consume_model_call does.
            due = time.monotonic() - count.synced_at >= self.sync_seconds
            if due:
                await self._read(store, user_id, count)
            if count.stored + count.pending >= limit:
                GUARDRAIL_EVENTS.labels("user_model_call_limit", "limited").inc()
                return False
            count.pending += 1
            if due:
                await self._write(store, user_id, count)
                return True
        self._flush_later(store, user_id, count)
        return True


# The process's ledger: every agent's middleware counts through it.
LEDGER = CallLedger()


def _consume_sync(store: BaseStore | None, user_id: str, limit: int) -> bool:
    if store is None:
        return True
    namespace, key = _slot(user_id)
    item = store.get(namespace, key)
    used = int(item.value.get("count", 0)) if item else 0
    if used >= limit:
        GUARDRAIL_EVENTS.labels("user_model_call_limit", "limited").inc()
        return False
    store.put(namespace, key, {"count": used + 1}, ttl=_ttl(store), index=False)
    return True


class UserModelCallLimit(AgentMiddleware[AgentState[Any], Any, Any]):
    """Answers with the limit message instead of calling the model once the budget is spent.
    (langchain's ModelCallLimitMiddleware counts per thread or per run, not per user.)"""

    name = "UserModelCallLimit"

    def __init__(self, calls_per_day: int) -> None:
        super().__init__()
        self.calls_per_day = calls_per_day

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | AIMessage:
        user = user_id_of(get_config())
        if not _consume_sync(request.runtime.store, user, self.calls_per_day):
            return AIMessage(content=limit_message(self.calls_per_day))
        return handler(request)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage:
        user = user_id_of(get_config())
        if not await LEDGER.consume(request.runtime.store, user, self.calls_per_day):
            return AIMessage(content=limit_message(self.calls_per_day))
        return await handler(request)
