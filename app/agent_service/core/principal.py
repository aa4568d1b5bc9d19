"""The user a run acts for: the server puts the authenticated principal in `configurable`."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig

ANONYMOUS = "anonymous"
# The user's daily model-call counts (guardrails.user_limit); a GDPR delete keeps them.
USAGE_NAMESPACE = "usage"
# The root of each user's own store space: the Store API shows principal P the namespaces
# under ("users", P) with these two labels taken off, and puts nothing anywhere else; the
# graphs' memories live there too, so the API and the graphs see the same items. The
# service's own records about a user (usage counts, refunds, orders) stay outside it as
# (<kind>, <user>), out of the user's reach. LangGraph's server documents the same scoping
# for its store, done in an `@auth.on.store` handler that prepends the user's identity to the
# namespace (https://docs.langchain.com/langsmith/store-auth); a fixed root label in front
# keeps a principal named like a service kind ("usage") out of the service's records.
USER_ROOT = "users"
# main_agent's memories, in the user's own space; what of a memory is embedded for search (its
# `saved_at` would only add noise).
MEMORY_NAMESPACE = "memories"
MEMORY_INDEX_FIELDS = ["text"]


def user_namespace(user: str, *labels: str) -> tuple[str, ...]:
    """Where `labels` of `user`'s own space are stored."""
    return (USER_ROOT, user, *labels)


def user_labels(user: str, namespace: tuple[str, ...]) -> tuple[str, ...] | None:
    """The labels `user` sees of a stored namespace, or None when it is not theirs."""
    if len(namespace) < 2 or namespace[0] != USER_ROOT or namespace[1] != user:
        return None
    return namespace[2:]


def user_id_of(config: RunnableConfig | dict[str, Any]) -> str:
    configurable = config.get("configurable") or {}
    return str(configurable.get("user_id") or ANONYMOUS)
