"""Which calls of the official SDK's async client the conformance suite drives.

A test records what it drives with `@covers("runs.create", ...)`; `test_sdk_surface.py` lists
every public method of langgraph-sdk's async sub-clients and fails when one is neither covered
nor named in `UNSUPPORTED` with its reason. The registry fills at import time, so the surface
test imports every module that carries `covers`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

COVERED: dict[str, list[str]] = {}

# Calls the service does not serve, each with the reason a reader of docs/api.md would want.
UNSUPPORTED: dict[str, str] = {
    "threads.join_stream": "not served: follow each run with runs.join_stream (issue 19)",
    "threads.stream": "the v3 thread-centric streaming protocol is not served (issue 19)",
}


def covers(*calls: str) -> Callable[[F], F]:
    """Mark a test as driving these SDK calls (`<client>.<method>`) with a meaningful assertion."""

    def mark(test: F) -> F:
        for call in calls:
            COVERED.setdefault(call, []).append(f"{test.__module__}.{test.__name__}")
        return test

    return mark
