"""PII redaction of the agents' conversations, applied as the `messages` reducer.

A reducer runs on every write to the channel, before the state is checkpointed. So an e-mail
address, card number or SSN never reaches the model nor any state of the thread (its values,
its history, the streamed values): not only the model's next prompt (what langchain's
PIIMiddleware rewrites, one step after the raw text was stored in the state) and not only the
latest user turn (the only one PIIMiddleware scans), but every message from the user, a tool
or `update_state`. It also costs no graph step of its own.

What it cannot reach: LangGraph keeps a run's input as sent in the input checkpoint's pending
`__start__` write. Keeping the raw input out of the database too takes redacting the request
body before the graph is invoked (the server's run input).
"""

from __future__ import annotations

from typing import Annotated, Any, Required, cast

from langchain.agents.middleware import AgentState
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    MessageLikeRepresentation,
    convert_to_messages,
)
from langgraph.graph.message import Messages, add_messages

from agent_service.guardrails.redaction import redact
from agent_service.metrics import GUARDRAIL_EVENTS


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact_value(item) for item in value]
    return value


def _redact_content(content: str | list[str | dict[str, Any]]) -> Any:
    if isinstance(content, str):
        return redact(content)
    # Content blocks: only text is redacted; an image's base64 data must stay intact.
    return [
        redact(block)
        if isinstance(block, str)
        else {**block, "text": redact(block["text"])}
        if isinstance(block.get("text"), str)
        else block
        for block in content
    ]


def redact_message(message: BaseMessage) -> BaseMessage:
    """`message` with PII redacted from its text and, for a model reply, its tool calls'
    arguments; the same object when it holds none."""
    update: dict[str, Any] = {}
    content = _redact_content(message.content)
    if content != message.content:
        update["content"] = content
    if isinstance(message, AIMessage) and message.tool_calls:
        calls = [{**call, "args": _redact_value(call["args"])} for call in message.tool_calls]
        if calls != message.tool_calls:
            update["tool_calls"] = calls
    if not update:
        return message
    GUARDRAIL_EVENTS.labels("pii", "redacted").inc()
    return message.model_copy(update=update)


def add_messages_redacted(left: Messages, right: Messages) -> list[AnyMessage]:
    """langgraph's `add_messages`, with every incoming message redacted first."""
    incoming = right if isinstance(right, list) else [right]
    redacted: list[MessageLikeRepresentation] = [
        redact_message(message) for message in convert_to_messages(incoming)
    ]
    # Given a list, add_messages returns the merged list of message objects.
    return cast(list[AnyMessage], add_messages(left, redacted))


class RedactedAgentState(AgentState[Any]):
    """The agent state with the redacting reducer on `messages`. Pass it as create_agent's
    `state_schema`: that schema wins over the middleware's for a field both declare."""

    messages: Required[Annotated[list[AnyMessage], add_messages_redacted]]
