"""What a route depends on: the process's services (built once in the lifespan) and the
request's authenticated principal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

import redis.asyncio as aioredis
from fastapi import Request

from agent_service.auth.access import AccessPolicy, Role
from agent_service.auth.api_keys import ApiKeyAuthenticator
from agent_service.core.circuit import Circuit
from agent_service.core.ratelimit import RateLimiter
from agent_service.graphs.assistants import AssistantCatalog
from agent_service.graphs.source import Graphs
from agent_service.persistence.backends import Persistence
from agent_service.persistence.node_cache import NodeCache
from agent_service.runs.queue import RunQueue
from agent_service.runs.tracker import RunTracker
from agent_service.settings import Settings

DATABASE_COOL_DOWN_SECONDS = 2.0


@dataclass
class Services:
    settings: Settings
    persistence: Persistence
    graphs: Graphs
    catalog: AssistantCatalog
    auth: ApiKeyAuthenticator
    limiter: RateLimiter
    auth_failures: RateLimiter
    cache: NodeCache
    redis: aioredis.Redis | None
    model_description: str
    access: AccessPolicy
    runs: RunTracker
    # Background runs: submit, join, cancel (`runs.queue`); its workers run in this process.
    queue: RunQueue
    # Opened by a "database unavailable" answer: for a moment, requests that need the
    # database answer 503 at once instead of each waiting out the pool timeout.
    database_circuit: Circuit = field(default_factory=lambda: Circuit(DATABASE_COOL_DOWN_SECONDS))


def get_services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


def principal_of(request: Request) -> str:
    """The authenticated principal of a request (set by the auth middleware)."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, str):
        # The auth middleware guards every route that calls this; reaching here is a bug.
        raise RuntimeError("route reached without an authenticated principal")
    return principal


def require_role(*any_of: Role) -> Callable[[Request], Awaitable[None]]:
    """A route dependency: the caller must hold one of these roles (403 naming them)."""

    # `async` though it never awaits: FastAPI runs a plain `def` dependency in its thread
    # pool, a thread hop on every request for a dictionary lookup.
    async def check(request: Request) -> None:
        get_services(request).access.require(
            principal_of(request), *any_of, action=f"{request.method} {request.url.path[:200]}"
        )

    return check
