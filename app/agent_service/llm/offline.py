"""A deterministic chat model for running every graph with no provider and no key.

It answers from the conversation alone, the same way every time, so tests, drills and
benchmarks are reproducible. It calls a bound tool when the latest user message matches the
tool's `offline_intent` (a regular expression kept in the tool's metadata, its named groups
becoming the call's arguments); after a tool result it answers with that result; asked for a
summary (langchain's summarisation prompt) it lists what the user said. Token usage
is reported (words, as a stable stand-in for tokens) so usage accounting runs as in production.
"""

from __future__ import annotations

import hashlib
import html
import inspect
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import Field

OFFLINE_MODEL_NAME = "offline"
INTENT_METADATA_KEY = "offline_intent"
# An explicit call, for any bound tool: `/call <tool> {"arg": ...}`.
_EXPLICIT_CALL = re.compile(r"^/call\s+(?P<name>[\w-]+)\s*(?P<args>\{.*\})?\s*$", re.DOTALL)
_ANSWER_WORDS = 48
# Intents are matched on this much of the user's turn. A request body may hold a megabyte of
# text, and a tool's pattern is anyone's regular expression: the model never gives one more.
INTENT_SCAN_CHARS = 2000
# How langchain's SummarizationMiddleware hands over the history, one element per message.
_SUMMARY_MARKER = "Messages to summarize:"
_HUMAN_TURN = re.compile(r'<message type="human"[^>]*>(.*?)</message>', re.DOTALL)


def message_text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
    return " ".join(part for part in parts if part)


def _words(messages: Sequence[BaseMessage]) -> int:
    return sum(len(message_text(m).split()) for m in messages)


def _summary(history: str) -> str:
    """What the user said in a history to summarise, most recent last, within the word bound."""
    turns = [" ".join(html.unescape(t).split()) for t in _HUMAN_TURN.findall(history)]
    words = "; ".join(turn for turn in turns if turn).split()
    kept = words[-_ANSWER_WORDS:]
    return "Earlier the user said: " + " ".join(kept) if kept else "Nothing to summarise."


class OfflineChatModel(BaseChatModel):
    """Deterministic, provider-free chat model with tool calling."""

    # (tool name, compiled intent) pairs, set by bind_tools on the bound copy.
    intents: list[tuple[str, re.Pattern[str]]] = Field(default_factory=list)
    tool_names: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return OFFLINE_MODEL_NAME

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": OFFLINE_MODEL_NAME}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        intents: list[tuple[str, re.Pattern[str]]] = []
        names: list[str] = []
        for tool in tools:
            if not isinstance(tool, BaseTool):
                continue
            names.append(tool.name)
            pattern = (tool.metadata or {}).get(INTENT_METADATA_KEY)
            if isinstance(pattern, str):
                intents.append((tool.name, re.compile(pattern, re.IGNORECASE | re.DOTALL)))
        return self.model_copy(update={"intents": intents, "tool_names": names})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._reply(messages)
        output_words = len(message_text(reply).split()) + 4 * len(reply.tool_calls)
        input_words = _words(messages)
        reply.usage_metadata = {
            "input_tokens": input_words,
            "output_tokens": output_words,
            "total_tokens": input_words + output_words,
        }
        reply.response_metadata = {"model_name": OFFLINE_MODEL_NAME, "model_provider": "offline"}
        return ChatResult(generations=[ChatGeneration(message=reply)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # A few regular expressions over the conversation, nothing to wait for: answered on
        # the event loop. BaseChatModel's default runs `_generate` in the thread pool, a
        # thread hop per model call.
        return self._generate(messages, stop=stop, **kwargs)

    def _reply(self, messages: Sequence[BaseMessage]) -> AIMessage:
        if messages and isinstance(messages[-1], ToolMessage):
            return AIMessage(content=f"Done. {message_text(messages[-1])}")
        last_user = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        text = message_text(last_user).strip() if last_user is not None else ""
        if _SUMMARY_MARKER in text:
            return AIMessage(content=_summary(text.split(_SUMMARY_MARKER, 1)[1]))
        call = self._tool_call(text)
        if call is not None:
            return AIMessage(content="", tool_calls=[call])
        return AIMessage(content=self._answer(messages, text))

    def _tool_call(self, text: str) -> dict[str, Any] | None:
        text = text[:INTENT_SCAN_CHARS]
        explicit = _EXPLICIT_CALL.match(text)
        if explicit and explicit["name"] in self.tool_names:
            args = json.loads(explicit["args"]) if explicit["args"] else {}
            return self._call(explicit["name"], args if isinstance(args, dict) else {})
        for name, pattern in self.intents:
            found = pattern.search(text)
            if found:
                args = {k: v.strip() for k, v in found.groupdict().items() if v is not None}
                return self._call(name, args)
        return None

    def _call(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        digest = hashlib.sha256(f"{name}:{json.dumps(args, sort_keys=True)}".encode()).hexdigest()
        return {"name": name, "args": args, "id": f"call_{digest[:16]}", "type": "tool_call"}

    def _answer(self, messages: Sequence[BaseMessage], text: str) -> str:
        if not text:
            # No user text: condense the conversation, never the instructions (a system
            # prompt is the operator's, not something to show the user).
            body = " ".join(message_text(m) for m in messages if not isinstance(m, SystemMessage))
            return " ".join(body.split()[:_ANSWER_WORDS]) or "What can I do for you?"
        echoed = " ".join(text.split()[:_ANSWER_WORDS])
        return f"You said: {echoed}"


# langchain_core asks `inspect.signature` of `_agenerate` on every model call
# (BaseChatModel._agenerate_with_cache) whether it takes `run_manager`: about 12 us each time,
# 3.5 us once the function carries its `__signature__`, the answer without re-reading it.
OfflineChatModel._agenerate.__signature__ = inspect.signature(  # type: ignore[attr-defined]
    OfflineChatModel._agenerate
)
