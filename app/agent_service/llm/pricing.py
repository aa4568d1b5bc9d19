"""Prices per million tokens for the cost accounting; unknown models cost nothing by design
(the metric's help says so) rather than a guess."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    input_per_million: float
    output_per_million: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.input_per_million + output_tokens * self.output_per_million
        ) / 1_000_000


# Public list prices (USD) as of the version's release; override by editing here.
PRICES: dict[str, Price] = {
    "offline": Price(0.0, 0.0),
    "openai:gpt-4o": Price(2.50, 10.00),
    "openai:gpt-4o-mini": Price(0.15, 0.60),
    "openai:gpt-4.1": Price(2.00, 8.00),
    "openai:gpt-4.1-mini": Price(0.40, 1.60),
    "anthropic:claude-sonnet-4-5": Price(3.00, 15.00),
    "anthropic:claude-haiku-4-5": Price(1.00, 5.00),
}


def price_of(model_setting: str) -> Price | None:
    return PRICES.get(model_setting)


def cost_usd(model_setting: str, input_tokens: int, output_tokens: int) -> float:
    price = price_of(model_setting)
    return 0.0 if price is None else price.cost(input_tokens, output_tokens)
