"""Graph values to JSON the way the LangGraph Server API shapes them (messages as dicts with a
`type`, interrupts as {value, id}, checkpoints as {thread_id, checkpoint_ns, checkpoint_id})."""

from __future__ import annotations

import base64
import dataclasses
import enum
import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from uuid import UUID

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
