"""Where the compiled graphs come from: the graph registry in production, a test's own graphs
in the server tests. The seam is the registry's `build_graphs(*, checkpointer, store, cache,
model)`, called once per process, and the model factory's `build_model` / `describe_model`."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from langgraph.cache.base import BaseCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore

from agent_service.settings import Settings

Graph = Pregel[Any, Any, Any, Any]
Graphs = Mapping[str, Graph]


class GraphBuilder(Protocol):
    def __call__(
        self,
        *,
        checkpointer: BaseCheckpointSaver[Any],
        store: BaseStore,
        cache: BaseCache[Any],
        model: Any,
    ) -> Graphs: ...


@dataclass(frozen=True)
class GraphSource:
    build: GraphBuilder
    model: Any
    model_description: str
    # Graphs with approval steps (see `auth.access`).
    approval_graphs: frozenset[str] = frozenset()


def registry_graph_source(settings: Settings) -> GraphSource:
    """The production graphs, with the model named by MODEL (offline when unset)."""
    # Imported here so `agent-service migrate` and the tests' own graphs never load them.
    registry = importlib.import_module("agent_service.graphs.build")
    factory = importlib.import_module("agent_service.llm.factory")
    api_key = None if settings.model_api_key is None else settings.model_api_key.get_secret_value()
    model = factory.build_model(settings.model, api_key)
    description = str(factory.describe_model(settings.model))
    # The graphs get their group of the settings here: they never read the environment.
    build = functools.partial(registry.build_graphs, options=settings.graph_options())
    return GraphSource(
        build=build,
        model=model,
        model_description=description,
        approval_graphs=registry.APPROVAL_GRAPHS,
    )
