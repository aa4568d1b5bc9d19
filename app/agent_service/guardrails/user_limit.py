"""A per-user budget of model calls per UTC day, across all of the user's threads and graphs.

The count lives in the Store (namespace per user), so every replica sees the same budget.
Two concurrent runs of one user may both pass at the boundary: the budget is a cost guard,
not a billing ledger, and a lock per call would cost more than the overshoot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage
from langgraph.config import get_config
from langgraph.store.base import BaseStore

from agent_service.core.principal import USAGE_NAMESPACE, user_id_of
from agent_service.metrics import GUARDRAIL_EVENTS

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
        if not await consume_model_call(request.runtime.store, user, self.calls_per_day):
            return AIMessage(content=limit_message(self.calls_per_day))
        return await handler(request)
