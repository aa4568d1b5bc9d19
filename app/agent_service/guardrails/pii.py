"""PII detection shared by the agents' middleware and the service's logs: e-mail addresses,
card numbers (Luhn-checked, via langchain's detectors) and US social security numbers."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from langchain.agents.middleware import AgentState, PIIMiddleware
from langchain.agents.middleware.pii import PIIMatch, detect_credit_card, detect_email
from langgraph.runtime import Runtime

from agent_service.metrics import GUARDRAIL_EVENTS

# Area 000/666/9xx, group 00 and serial 0000 are never issued.
_SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")


def detect_ssn(content: str) -> list[PIIMatch]:
    return [
        PIIMatch(type="ssn", value=m.group(), start=m.start(), end=m.end())
        for m in _SSN.finditer(content)
    ]


DETECTORS: dict[str, Callable[[str], list[PIIMatch]]] = {
    "email": detect_email,
    "credit_card": detect_credit_card,
    "ssn": detect_ssn,
}


def detect_pii(content: str) -> list[PIIMatch]:
    """Every PII value in `content`, in order, overlaps resolved in favour of the earliest."""
    found = sorted(
        (match for detector in DETECTORS.values() for match in detector(content)),
        key=lambda m: (m["start"], -m["end"]),
    )
    kept: list[PIIMatch] = []
    for match in found:
        if not kept or match["start"] >= kept[-1]["end"]:
            kept.append(match)
    return kept


def redact(text: str) -> str:
    """`text` with every detected PII value replaced by `[REDACTED_<TYPE>]`."""
    out: list[str] = []
    cursor = 0
    for match in detect_pii(text):
        out.append(text[cursor : match["start"]])
        out.append(f"[REDACTED_{match['type'].upper()}]")
        cursor = match["end"]
    out.append(text[cursor:])
    return "".join(out)


class PIIRedaction(PIIMiddleware):
    """langchain's PIIMiddleware with one detector for all three kinds (one graph step, not
    three). It rewrites the conversation before the model sees it, so the checkpoint never
    holds the value either; each redaction is counted."""

    def __init__(self) -> None:
        super().__init__("pii", detector=detect_pii, strategy="redact", apply_to_tool_results=True)

    def before_model(self, state: AgentState[Any], runtime: Runtime[Any]) -> dict[str, Any] | None:
        update = super().before_model(state, runtime)
        if update:
            GUARDRAIL_EVENTS.labels("pii", "redacted").inc()
        return update

    # The async hook is inherited: upstream it calls before_model, which counts.
