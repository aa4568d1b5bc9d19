"""The one-node graph: the server and its persistence, with no agent work. Imported by both
servers (this module needs nothing but langgraph)."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.pregel import Pregel

ONE_NODE = "one_node"


def _echo(state: MessagesState) -> dict[str, Any]:
    last = state["messages"][-1]
    return {"messages": [{"role": "assistant", "content": f"echo: {last.content}"}]}


def build_one_node(
    checkpointer: BaseCheckpointSaver[Any] | None = None,
) -> Pregel[Any, Any, Any, Any]:
    builder = StateGraph(MessagesState)
    builder.add_node("echo", _echo)
    builder.add_edge(START, "echo")
    builder.add_edge("echo", END)
    return builder.compile(checkpointer=checkpointer, name=ONE_NODE)


# For `langgraph dev` (the peer): compiled without persistence, the server brings its own.
graph = build_one_node()
