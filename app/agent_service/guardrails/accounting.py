"""Token and cost accounting into the thread's state: each agent turn's usage is added to
counters a client reads with the thread (what a conversation cost). It wraps the model call,
so it adds no graph step. The Prometheus side is the model's own callback
(llm.usage_metrics), which also sees the calls made outside an agent's turn."""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NotRequired

from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
)
from langgraph.types import Command

from agent_service.llm.pricing import cost_usd
from agent_service.llm.usage_metrics import usage_of


class UsageState(AgentState[Any]):
    model_calls: NotRequired[Annotated[int, operator.add]]
    input_tokens: NotRequired[Annotated[int, operator.add]]
    output_tokens: NotRequired[Annotated[int, operator.add]]
    cost_usd: NotRequired[Annotated[float, operator.add]]


def usage_update(model_setting: str, messages: list[Any]) -> dict[str, Any]:
    """The state increments for one model reply."""
    input_tokens, output_tokens = usage_of(messages)
    return {
        "model_calls": 1,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": cost_usd(model_setting, input_tokens, output_tokens),
    }


class UsageAccounting(AgentMiddleware[UsageState, Any, Any]):
    name = "UsageAccounting"
    state_schema = UsageState

    def __init__(self, model_setting: str) -> None:
        super().__init__()
        self.model_setting = model_setting

    def _extend(self, response: ModelResponse[Any]) -> ExtendedModelResponse[Any]:
        update = usage_update(self.model_setting, list(response.result))
        return ExtendedModelResponse(model_response=response, command=Command(update=update))

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ExtendedModelResponse[Any]:
        return self._extend(handler(request))

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ExtendedModelResponse[Any]:
        return self._extend(await handler(request))
