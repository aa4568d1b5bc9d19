"""The graphs both servers serve: the registry's main_agent (offline model) and a one-node
graph that measures the server and its persistence alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_service.graphs.build import build_graphs
from agent_service.graphs.source import GraphSource, registry_graph_source
from agent_service.settings import Settings
from langgraph.cache.base import BaseCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore

from tools.bench.one_node import ONE_NODE, build_one_node


def _bench_graphs(
    *,
    checkpointer: BaseCheckpointSaver[Any],
    store: BaseStore,
    cache: BaseCache[Any],
    model: Any,
) -> Mapping[str, Pregel[Any, Any, Any, Any]]:
    graphs = dict(build_graphs(checkpointer=checkpointer, store=store, cache=cache, model=model))
    graphs[ONE_NODE] = build_one_node(checkpointer)
    return graphs


def bench_graph_source(settings: Settings) -> GraphSource:
    production = registry_graph_source(settings)
    return GraphSource(
        build=_bench_graphs, model=production.model, model_description=production.model_description
    )
