"""Graph values to JSON the way the LangGraph Server API shapes them (messages as dicts with a
`type`, interrupts as {value, id}, checkpoints as {thread_id, checkpoint_ns, checkpoint_id})."""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from uuid import UUID

import orjson
from fastapi.responses import JSONResponse
from langchain_core.messages import BaseMessage
from langgraph.types import Interrupt, Send, StateSnapshot
from pydantic import BaseModel


def to_jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, BaseMessage):
        return to_jsonable(value.model_dump())
    if isinstance(value, Interrupt):
        return {"value": to_jsonable(value.value), "id": value.id}
    if isinstance(value, Send):
        return {"node": value.node, "arg": to_jsonable(value.arg)}
    if isinstance(value, BaseModel):
        return to_jsonable(value.model_dump())
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    return str(value)


# orjson hands these to `_default` instead of writing them its own way, so the text is what
# `to_jsonable` makes of them (Interrupt is a dataclass; datetimes as isoformat()).
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def _default(value: Any) -> Any:
    """What orjson cannot write itself, one level down (it calls this again for what the
    result holds)."""
    if isinstance(value, BaseMessage | BaseModel):
        return value.model_dump()
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    return to_jsonable(value)


def json_bytes(value: Any) -> bytes:
    """`to_jsonable(value)` as compact JSON, written by orjson (a run's reply holds the whole
    message history: the standard library's encoder and the walk over every message were
    about 0.5 ms of a 40-message reply, orjson a hundredth of that). What orjson refuses (a
    non-string key, an integer past 64 bits) goes the standard way, with the same result."""
    try:
        return orjson.dumps(value, default=_default, option=_ORJSON_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(
            to_jsonable(value), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode()


class GraphJSONResponse(JSONResponse):
    """A JSON response of graph values (messages, interrupts...), written by `json_bytes`."""

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def checkpoint_ref(config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not config:
        return None
    configurable = config.get("configurable", {})
    return {
        "thread_id": configurable.get("thread_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable.get("checkpoint_id"),
        "checkpoint_map": configurable.get("checkpoint_map"),
    }


def thread_state(snapshot: StateSnapshot) -> dict[str, Any]:
    tasks = [
        {
            "id": task.id,
            "name": task.name,
            "error": None if task.error is None else repr(task.error),
            "interrupts": to_jsonable(task.interrupts),
            "checkpoint": None,
            "state": None,
            "result": to_jsonable(task.result),
        }
        for task in snapshot.tasks
    ]
    return {
        "values": to_jsonable(snapshot.values),
        "next": list(snapshot.next),
        "tasks": tasks,
        "metadata": to_jsonable(snapshot.metadata or {}),
        "created_at": snapshot.created_at,
        "checkpoint": checkpoint_ref(snapshot.config),
        "parent_checkpoint": checkpoint_ref(snapshot.parent_config),
        "interrupts": to_jsonable(snapshot.interrupts),
    }
