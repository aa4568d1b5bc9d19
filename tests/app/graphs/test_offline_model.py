"""The offline model: deterministic answers and tool calls, usage reported."""

from __future__ import annotations

import pytest
from agent_service.llm.factory import ModelConfigError, build_model, describe_model
from agent_service.llm.offline import INTENT_METADATA_KEY, OfflineChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


add.metadata = {INTENT_METADATA_KEY: r"add (?P<a>\d+) and (?P<b>\d+)"}


def test_intent_becomes_a_tool_call_with_named_groups_as_arguments() -> None:
    reply = OfflineChatModel().bind_tools([add]).invoke([HumanMessage("please add 2 and 40")])
    assert isinstance(reply, AIMessage)
    assert reply.tool_calls[0]["name"] == "add"
    assert reply.tool_calls[0]["args"] == {"a": "2", "b": "40"}


def test_explicit_call_syntax_reaches_any_bound_tool() -> None:
    reply = (
        OfflineChatModel().bind_tools([add]).invoke([HumanMessage('/call add {"a": 1, "b": 2}')])
    )
    assert isinstance(reply, AIMessage)
    assert reply.tool_calls[0]["args"] == {"a": 1, "b": 2}


def test_unbound_tools_are_never_called() -> None:
    reply = OfflineChatModel().invoke([HumanMessage("please add 2 and 40")])
    assert isinstance(reply, AIMessage)
    assert reply.tool_calls == []
    assert reply.content == "You said: please add 2 and 40"


def test_after_a_tool_result_it_answers_with_it() -> None:
    messages = [HumanMessage("add 1 and 2"), ToolMessage("3", tool_call_id="x")]
    reply = OfflineChatModel().bind_tools([add]).invoke(messages)
    assert reply.content == "Done. 3"


def test_same_conversation_same_reply_and_usage_reported() -> None:
    model = OfflineChatModel().bind_tools([add])
    first = model.invoke([HumanMessage("add 5 and 6")])
    second = model.invoke([HumanMessage("add 5 and 6")])
    assert isinstance(first, AIMessage)
    assert isinstance(second, AIMessage)
    assert first.tool_calls == second.tool_calls
    assert first.usage_metadata is not None
    assert first.usage_metadata["input_tokens"] == 4
    assert first.usage_metadata["total_tokens"] > first.usage_metadata["input_tokens"]


def test_factory_offline_and_errors_name_the_setting() -> None:
    assert isinstance(build_model("offline", None), OfflineChatModel)
    assert describe_model("offline").startswith("offline")
    with pytest.raises(ModelConfigError, match="MODEL='gpt4'"):
        build_model("gpt4", "key")
    with pytest.raises(ModelConfigError, match="MODEL_API_KEY"):
        build_model("openai:gpt-4o-mini", None)
