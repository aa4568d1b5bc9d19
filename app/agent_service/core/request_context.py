"""Per-request facts the request log line reports (principal, thread, graph), filled in by
whichever layer learns them. A mutable dict in a contextvar: handlers run in the request's
context, so what they add is visible to the middleware that writes the log line."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

_fields: ContextVar[dict[str, Any] | None] = ContextVar("agent_service_request", default=None)


def start_request(**initial: Any) -> dict[str, Any]:
    fields: dict[str, Any] = dict(initial)
    _fields.set(fields)
    return fields


def annotate(**values: Any) -> None:
    fields = _fields.get()
    if fields is not None:
        fields.update({k: v for k, v in values.items() if v is not None})


def current() -> dict[str, Any]:
    return dict(_fields.get() or {})
