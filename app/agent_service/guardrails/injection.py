"""Prompt-injection detection: a user turn that tries to override the agent's instructions is
answered with a refusal that says why, instead of reaching the model."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, HumanMessage

from agent_service.llm.offline import message_text
from agent_service.metrics import GUARDRAIL_EVENTS

REFUSAL = (
    "I can't act on that request: it asks me to ignore or reveal my instructions, "
    "which looks like a prompt-injection attempt. Please rephrase what you need."
)

# Phrasings seen in injection attempts; matched on the latest user turn only, so quoting one
# earlier in a conversation does not poison the thread.
_PATTERNS = [
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(previous|prior|above|all|your|system)\b"
    r".{0,20}\b(instructions?|prompts?|rules|guidelines)\b",
    r"\b(reveal|print|show|repeat|leak)\b.{0,30}\b(system|hidden|initial)\s+(prompt|instructions?)",
    r"\byou are now\b.{0,40}\b(unrestricted|jailbroken|dan|developer mode)\b",
    r"\b(enable|enter|activate)\b.{0,20}\b(developer|god|jailbreak)\s+mode\b",
    r"<\s*/?\s*(system|im_start|im_end)\s*>",
]
_INJECTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE | re.DOTALL)


def looks_like_injection(text: str) -> bool:
    return _INJECTION.search(text) is not None


def _refusal_for(request: ModelRequest[Any]) -> AIMessage | None:
    messages = request.messages
    if not messages or not isinstance(messages[-1], HumanMessage):
        return None
    if not looks_like_injection(message_text(messages[-1])):
        return None
    GUARDRAIL_EVENTS.labels("prompt_injection", "refused").inc()
    return AIMessage(content=REFUSAL)


class PromptInjectionGuard(AgentMiddleware[AgentState[Any], Any, Any]):
    # Wraps the model call rather than adding a graph step: no extra checkpoint per turn.
    name = "PromptInjectionGuard"

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | AIMessage:
        return _refusal_for(request) or handler(request)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage:
        return _refusal_for(request) or await handler(request)
