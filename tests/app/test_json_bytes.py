"""`json_bytes` (orjson) writes exactly what the standard encoder writes of `to_jsonable`: the
same JSON for every kind of value a graph's state holds, including those orjson refuses."""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from agent_service.core.serialization import GraphJSONResponse, json_bytes, to_jsonable
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.types import Interrupt, Send
from pydantic import BaseModel


class Colour(enum.Enum):
    RED = "red"


class Order(BaseModel):
    order_id: str
    placed: datetime
    tags: set[str]


@dataclass
class Point:
    x: int
    when: date


def _standard(value: Any) -> Any:
    text = json.dumps(
        to_jsonable(value), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )
    return json.loads(text)


STATE: dict[str, Any] = {
    "messages": [
        HumanMessage(content="refund order A-1 for 12.50 €", id="h1"),
        AIMessage(
            content="",
            id="a1",
            tool_calls=[{"name": "issue_refund", "args": {"amount": 12.5}, "id": "c1"}],
            usage_metadata={"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
        ),
        ToolMessage(content="done", tool_call_id="c1", id="t1"),
    ],
    "interrupt": Interrupt(value={"question": "approve?"}, id="i1"),
    "send": Send("worker", {"topic": "x"}),
    "when": datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
    "day": date(2026, 1, 2),
    "id": uuid.UUID(int=7),
    "colour": Colour.RED,
    "raw": b"\x00\xff",
    "nan": float("nan"),
    "inf": float("-inf"),
    "tags": frozenset({"a"}),
    "pair": (1, "two"),
    "order": Order(order_id="A-1", placed=datetime(2026, 1, 1, tzinfo=UTC), tags={"x"}),
    "point": Point(x=1, when=date(2026, 1, 1)),
}


@pytest.mark.parametrize(
    "value",
    [
        STATE,
        {"big": 2**70},  # past 64 bits: orjson refuses, the standard encoder writes it
        {1: "one", "nested": {2: "two"}},  # non-string keys
        ["plain", 1, 2.5, True, None],
    ],
)
def test_json_bytes_matches_the_standard_encoding(value: Any) -> None:
    assert json.loads(json_bytes(value)) == _standard(value)


def test_the_response_class_writes_json_bytes() -> None:
    response = GraphJSONResponse(STATE, headers={"Content-Location": "/x"})
    assert json.loads(bytes(response.body)) == _standard(STATE)
    assert response.headers["content-type"] == "application/json"
