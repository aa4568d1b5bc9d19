"""The authenticated principal of a request (set by the auth middleware)."""

from __future__ import annotations

from fastapi import Request


def principal_of(request: Request) -> str:
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, str):
        # The auth middleware guards every route that calls this; reaching here is a bug.
        raise RuntimeError("route reached without an authenticated principal")
    return principal
