"""Every call of the configured model counted in the Prometheus metrics (calls, tokens, cost),
wherever it happens: an agent's turn, a summary, a research task. A callback on the model
sees them all; the agents' state accounting (guardrails.accounting) covers only their turns."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from agent_service.llm.pricing import cost_usd
from agent_service.metrics import MODEL_CALLS, MODEL_COST, MODEL_TOKENS


def usage_of(messages: list[Any]) -> tuple[int, int]:
    """(input, output) tokens the model reported for these replies (usage metadata)."""
    input_tokens = output_tokens = 0
    for message in messages:
        usage = message.usage_metadata if isinstance(message, AIMessage) else None
        if usage:
            input_tokens += int(usage["input_tokens"])
            output_tokens += int(usage["output_tokens"])
    return input_tokens, output_tokens


class UsageMetrics(BaseCallbackHandler):
    # Counter increments are cheap: no thread hop for async calls.
    run_inline = True

    def __init__(self, model_setting: str) -> None:
        self.model_setting = model_setting

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        replies = [
            generation.message
            for batch in response.generations
            for generation in batch
            if isinstance(generation, ChatGeneration)
        ]
        input_tokens, output_tokens = usage_of(replies)
        model = self.model_setting
        MODEL_CALLS.labels(model).inc()
        MODEL_TOKENS.labels(model, "input").inc(input_tokens)
        MODEL_TOKENS.labels(model, "output").inc(output_tokens)
        MODEL_COST.labels(model).inc(cost_usd(model, input_tokens, output_tokens))
