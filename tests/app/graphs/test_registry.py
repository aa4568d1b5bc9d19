"""The registry, the LangGraph Server entry points and langgraph.json agree."""

from __future__ import annotations

import importlib
import json

from agent_service.graphs.build import GRAPH_IDS, build_graphs
from agent_service.llm.offline import OfflineChatModel
from langgraph.cache.memory import InMemoryCache
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from tools.kit.programs import REPO_ROOT


def test_registry_builds_every_graph_once_with_its_persistence() -> None:
    saver = InMemorySaver()
    graphs = build_graphs(
        checkpointer=saver, store=InMemoryStore(), cache=InMemoryCache(), model=OfflineChatModel()
    )
    assert tuple(graphs) == GRAPH_IDS
    assert all(graph.checkpointer is saver for graph in graphs.values())


def test_langgraph_json_points_at_loadable_graphs() -> None:
    manifest = json.loads((REPO_ROOT / "app" / "langgraph.json").read_text())
    assert sorted(manifest["graphs"]) == sorted(GRAPH_IDS)
    for graph_id, target in manifest["graphs"].items():
        path, attribute = target.split(":")
        module = path.removeprefix("./").removesuffix(".py").replace("/", ".")
        graph = getattr(importlib.import_module(module), attribute)
        assert graph.name == graph_id
        assert graph.checkpointer is None  # LangGraph Server brings its own
