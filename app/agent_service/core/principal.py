"""The user a run acts for: the server puts the authenticated principal in `configurable`."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig

ANONYMOUS = "anonymous"
# The user's daily model-call counts (guardrails.user_limit); a GDPR delete keeps them.
USAGE_NAMESPACE = "usage"


def user_id_of(config: RunnableConfig | dict[str, Any]) -> str:
    configurable = config.get("configurable") or {}
    return str(configurable.get("user_id") or ANONYMOUS)
