"""The offline model: deterministic answers and tool calls, usage reported."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from agent_service.llm.factory import ModelConfigError, build_model, describe_model
from agent_service.llm.offline import INTENT_METADATA_KEY, OfflineChatModel
from agent_service.llm.usage_metrics import UsageMetrics
from langchain_core.messages import (
    AIMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    get_buffer_string,
)
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


def test_a_summary_request_lists_what_the_user_said() -> None:
    history = get_buffer_string(
        [
            HumanMessage("I ordered <two> lamps"),
            AIMessage("Noted."),
            HumanMessage("one arrived broken"),
        ],
        format="xml",
    )
    prompt = f"Summarise this.\n<messages>\nMessages to summarize:\n{history}\n</messages>"
    reply = OfflineChatModel().invoke([HumanMessage(prompt)])
    assert reply.content == "Earlier the user said: I ordered <two> lamps; one arrived broken"


def test_factory_offline_and_errors_name_the_setting() -> None:
    model = build_model("offline", None)
    assert isinstance(model, OfflineChatModel)
    assert isinstance(model.callbacks, list)
    assert any(isinstance(handler, UsageMetrics) for handler in model.callbacks)
    assert describe_model("offline").startswith("offline")
    with pytest.raises(ModelConfigError, match="MODEL='gpt4'"):
        build_model("gpt4", "key")
    with pytest.raises(ModelConfigError, match="MODEL_API_KEY"):
        build_model("openai:gpt-4o-mini", None)


def test_a_provider_that_cannot_load_is_a_config_error_without_the_key() -> None:
    with pytest.raises(ModelConfigError, match="MODEL='nosuchprovider:model-1'") as caught:
        build_model("nosuchprovider:model-1", "sk-never-shown-0123")
    assert "provider" in str(caught.value)
    assert "sk-never-shown" not in str(caught.value)


def test_a_long_message_matches_intents_in_linear_time() -> None:
    # Not a speed assertion: the unbounded refund intent took hours on this input (16 KB:
    # 3 s, growing with the square); the bound only tells a hang from an answer.
    code = """
from agent_service.graphs.main_agent import tools
from agent_service.llm.offline import OfflineChatModel
from langchain_core.messages import HumanMessage
model = OfflineChatModel().bind_tools(tools())
for text in ("refund order " + "a" * 1_000_000, "refund " * 150_000 + "order x"):
    model.invoke([HumanMessage(text)])
reply = model.invoke([HumanMessage("please refund order Z-1, amount 5.50")])
assert reply.tool_calls[0]["args"] == {"order_id": "Z-1", "amount": "5.50"}, reply
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("content", ["", "   ", [{"type": "image_url", "image_url": "x"}]])
def test_the_offline_model_never_shows_its_system_prompt(content: Any) -> None:
    prompt = "You are a helpful assistant. SECRET-INSTRUCTIONS"
    reply = OfflineChatModel().invoke([SystemMessage(prompt), HumanMessage(content)])
    assert "SECRET-INSTRUCTIONS" not in str(reply.content)
