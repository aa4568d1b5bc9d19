"""The graphs both servers serve: the registry's main_agent (offline model) and a one-node
graph that measures the server and its persistence alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_service.graphs.source import GraphSource, registry_graph_source
from agent_service.settings import Settings
from langgraph.cache.base import BaseCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore

from tools.bench.one_node import ONE_NODE, build_one_node


def bench_graph_source(settings: Settings) -> GraphSource:
    production = registry_graph_source(settings)

    def build(
        *,
        checkpointer: BaseCheckpointSaver[Any],
        store: BaseStore,
        cache: BaseCache[Any],
        model: Any,
    ) -> Mapping[str, Pregel[Any, Any, Any, Any]]:
        # The registry's build with the settings' graph options (USER_MODEL_CALLS_PER_DAY):
        # without them every graph had the default budget of 1000 calls a day, and after the
        # first thousand runs of a benchmark main_agent answered "limit reached" without
        # calling the model.
        graphs = dict(
            production.build(checkpointer=checkpointer, store=store, cache=cache, model=model)
        )
        graphs[ONE_NODE] = build_one_node(checkpointer)
        return graphs

    return GraphSource(
        build=build, model=production.model, model_description=production.model_description
    )
