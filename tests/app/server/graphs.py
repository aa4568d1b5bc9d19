"""The server tests' own graph, injected through the same seam as the registry's graphs.

`echo_agent`: `remember` writes the user's message to the Store (namespace per user) and
streams a custom event; `respond` answers through a chat model (so `messages` streaming has
chunks) after an optional `delay` from `configurable`; when the message asks for approval,
`approve` interrupts and records the answer it is resumed with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from agent_service.graphs.source import Graphs, GraphSource
from agent_service.settings import Settings
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.cache.base import BaseCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_store, get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.store.base import BaseStore
from langgraph.types import interrupt

GRAPH_ID = "echo_agent"


class EchoState(MessagesState):
    approved: Any
    respond_calls: int


def say(text: str) -> dict[str, Any]:
    """A run input with one user message."""
    return {"messages": [{"role": "user", "content": text}]}


def _last_text(messages: Sequence[BaseMessage]) -> str:
    content = messages[-1].content if messages else ""
    return content if isinstance(content, str) else str(content)


async def remember(state: EchoState, config: RunnableConfig) -> dict[str, Any]:
    user_id = config["configurable"]["user_id"]
    text = _last_text(state["messages"])
    await get_store().aput(("memories", user_id), f"m{len(state['messages'])}", {"text": text})
    get_stream_writer()({"remembered": text})
    return {}


def build_respond(model: FakeListChatModel) -> Any:
    async def respond(state: EchoState, config: RunnableConfig) -> dict[str, Any]:
        delay = float(config["configurable"].get("delay", 0))
        if delay:
            await asyncio.sleep(delay)
        reply = await model.ainvoke(state["messages"])
        text = f"echo: {_last_text(state['messages'])}"
        return {
            "messages": [AIMessage(content=text, id=reply.id)],
            "respond_calls": state.get("respond_calls", 0) + 1,
        }

    return respond


def approve(state: EchoState) -> dict[str, Any]:
    answer = interrupt({"question": "approve?", "request": _last_text(state["messages"][:-1])})
    return {"approved": answer}


def _route(state: EchoState) -> str:
    human = [m for m in state["messages"] if m.type == "human"]
    return "approve" if human and "approve" in _last_text(human[-1:]) else END


def build_test_graphs(
    *,
    checkpointer: BaseCheckpointSaver[Any],
    store: BaseStore,
    cache: BaseCache[Any],
    model: Any,
) -> Graphs:
    chat = FakeListChatModel(responses=["streamed reply"])
    builder = StateGraph(EchoState)
    builder.add_node("remember", remember)
    builder.add_node("respond", build_respond(chat))
    builder.add_node("approve", approve)
    builder.add_edge(START, "remember")
    builder.add_edge("remember", "respond")
    builder.add_conditional_edges("respond", _route, ["approve", END])
    builder.add_edge("approve", END)
    graph = builder.compile(checkpointer=checkpointer, store=store, cache=cache)
    return {GRAPH_ID: graph}


def echo_graph_source(_settings: Settings) -> GraphSource:
    return GraphSource(
        build=build_test_graphs, model=None, model_description="test graphs (fake model)"
    )
