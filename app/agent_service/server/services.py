"""Everything a request handler needs, built once per process in the lifespan."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import redis.asyncio as aioredis
from fastapi import Request

from agent_service.api.catalog import AssistantCatalog
from agent_service.auth.api_keys import ApiKeyAuthenticator
from agent_service.persistence.backends import Persistence
from agent_service.persistence.node_cache import NodeCache
from agent_service.server.circuit import Circuit
from agent_service.server.graph_source import Graphs
from agent_service.server.ratelimit import RateLimiter
from agent_service.settings import Settings

DATABASE_COOL_DOWN_SECONDS = 2.0


@dataclass
class RunTracker:
    """The runs executing in this process, so shutdown can let them finish."""

    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def add(self, task: asyncio.Task[Any]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self, grace_seconds: float) -> int:
        """Wait up to the grace period; cancel what is still running (each run keeps its
        last checkpoint and stays resumable). Returns how many had to be cancelled."""
        pending = set(self.tasks)
        if not pending:
            return 0
        _, still_running = await asyncio.wait(pending, timeout=grace_seconds)
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running, timeout=5)
        return len(still_running)


@dataclass
class Services:
    settings: Settings
    persistence: Persistence
    graphs: Graphs
    catalog: AssistantCatalog
    auth: ApiKeyAuthenticator
    limiter: RateLimiter
    cache: NodeCache
    redis: aioredis.Redis | None
    model_description: str
    runs: RunTracker = field(default_factory=RunTracker)
    # Opened by a "database unavailable" answer: for a moment, requests that need the
    # database answer 503 at once instead of each waiting out the pool timeout.
    database_circuit: Circuit = field(default_factory=lambda: Circuit(DATABASE_COOL_DOWN_SECONDS))


def get_services(request: Request) -> Services:
    return cast(Services, request.app.state.services)
