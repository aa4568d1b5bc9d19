"""Token and cost accounting: each model reply's usage is added to the thread's state (so a
client reads what a conversation cost) and to the Prometheus counters (so the platform sees
spend by model). It wraps the model call, so it adds no graph step."""

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
from langchain_core.messages import AIMessage
from langgraph.types import Command

from agent_service.llm.pricing import cost_usd
from agent_service.metrics import MODEL_CALLS, MODEL_COST, MODEL_TOKENS


class UsageState(AgentState[Any]):
    model_calls: NotRequired[Annotated[int, operator.add]]
    input_tokens: NotRequired[Annotated[int, operator.add]]
    output_tokens: NotRequired[Annotated[int, operator.add]]
    cost_usd: NotRequired[Annotated[float, operator.add]]


def usage_update(model_setting: str, messages: list[Any]) -> dict[str, Any]:
    """The state increments for one model reply, recorded in the metrics as well."""
    input_tokens = output_tokens = 0
    for message in messages:
        usage = message.usage_metadata if isinstance(message, AIMessage) else None
        if usage:
            input_tokens += int(usage["input_tokens"])
            output_tokens += int(usage["output_tokens"])
    cost = cost_usd(model_setting, input_tokens, output_tokens)
    MODEL_CALLS.labels(model_setting).inc()
    MODEL_TOKENS.labels(model_setting, "input").inc(input_tokens)
    MODEL_TOKENS.labels(model_setting, "output").inc(output_tokens)
    MODEL_COST.labels(model_setting).inc(cost)
    return {
        "model_calls": 1,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": cost,
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
