"""The drill's graphs: the server tests' echo graph (delays on request) and a graph whose only
node raises, served by the kit's launcher (`tests.monitoring.graphs:drill_graph_source`)."""

from __future__ import annotations

from typing import Any

from agent_service.graphs.source import GraphSource
from agent_service.settings import Settings
from langgraph.graph import END, START, MessagesState, StateGraph

from tests.app.server.graphs import build_test_graphs

FAILING_GRAPH = "failing_agent"


async def _fail(state: MessagesState) -> dict[str, Any]:
    raise RuntimeError("the drill's graph fails on purpose")


def _build(**kwargs: Any) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node("fail", _fail)
    builder.add_edge(START, "fail")
    builder.add_edge("fail", END)
    failing = builder.compile(checkpointer=kwargs["checkpointer"], store=kwargs["store"])
    return {**build_test_graphs(**kwargs), FAILING_GRAPH: failing}


def drill_graph_source(_settings: Settings) -> GraphSource:
    return GraphSource(build=_build, model=None, model_description="drill graphs (fake model)")
