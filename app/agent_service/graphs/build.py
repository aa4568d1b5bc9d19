"""The graphs the service serves, compiled once per process with its persistence."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.cache.base import BaseCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore

from agent_service.graphs.main_agent import build_main_agent
from agent_service.graphs.metered_cache import MeteredCache
from agent_service.graphs.options import GraphOptions
from agent_service.graphs.research_agent import build_research_agent
from agent_service.graphs.support_agent import build_support_agent

GRAPH_IDS = ("main_agent", "research_agent", "support_agent")
# Graphs that pause for a human's approval (main_agent's refunds, support_agent's
# escalations): only an approver may resume them, and only with `command.resume`.
APPROVAL_GRAPHS = frozenset({"main_agent", "support_agent"})


def build_graphs(
    *,
    checkpointer: BaseCheckpointSaver[Any],
    store: BaseStore,
    cache: BaseCache[Any],
    model: BaseChatModel,
    options: GraphOptions | None = None,
) -> Mapping[str, Pregel[Any, Any, Any, Any]]:
    tuned = options or GraphOptions()
    metered = MeteredCache(cache)
    persistence: dict[str, Any] = {"checkpointer": checkpointer, "store": store, "cache": metered}
    return {
        "main_agent": build_main_agent(model=model, options=tuned, **persistence),
        "research_agent": build_research_agent(model=model, options=tuned, **persistence),
        "support_agent": build_support_agent(model=model, options=tuned, **persistence),
    }
