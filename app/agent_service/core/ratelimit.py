"""Per-principal sliding-window rate limit: in Redis when REDIS_URL is set (shared by every
replica), in-process otherwise or while Redis is unreachable."""

from __future__ import annotations

import math
import time
import uuid
from collections import deque

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from agent_service.core.circuit import Circuit
from agent_service.core.redis_access import RATE_LIMIT_PREFIX
from agent_service.metrics import RATE_LIMIT_REJECTIONS

log = structlog.get_logger(__name__)

WINDOW_SECONDS = 60.0
KEY_PREFIX = RATE_LIMIT_PREFIX

# Atomic window check on the Redis clock (replicas' clocks may differ): drop entries older
# than the window, admit when below the limit, otherwise return milliseconds until the
# oldest entry leaves the window.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, now .. '-' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


class LocalWindow:
    """The in-process fallback: exact sliding window per principal, one process only."""

    def __init__(self, limit: int, window_seconds: float = WINDOW_SECONDS) -> None:
        self._limit = limit
        self._window = window_seconds
        self._hits: dict[str, deque[float]] = {}

    def hit(self, principal: str) -> float | None:
        now = time.monotonic()
        hits = self._hits.setdefault(principal, deque())
        while hits and hits[0] <= now - self._window:
            hits.popleft()
        if len(hits) < self._limit:
            hits.append(now)
            return None
        return hits[0] + self._window - now


class RateLimiter:
    def __init__(
        self,
        limit_per_minute: int,
        redis_client: aioredis.Redis | None,
        window_seconds: float = WINDOW_SECONDS,
    ) -> None:
        self._limit = limit_per_minute
        self._window = window_seconds
        self._redis = redis_client
        self._script = (
            None if redis_client is None else redis_client.register_script(_SLIDING_WINDOW)
        )
        self._local = LocalWindow(limit_per_minute, window_seconds)
        self._circuit = Circuit()

    @property
    def limit(self) -> int:
        return self._limit

    async def hit(self, principal: str) -> int | None:
        """Count one request; None when admitted, else whole seconds to wait (>= 1)."""
        if self._script is not None and self._circuit.closed:
            try:
                wait_ms = int(
                    await self._script(
                        keys=[KEY_PREFIX + principal],
                        args=[int(self._window * 1000), self._limit, uuid.uuid4().hex],
                    )
                )
            except (RedisError, OSError) as exc:
                if self._circuit.trip():
                    log.warning(
                        "rate limiter falls back to in-process counting",
                        reason=type(exc).__name__,
                    )
            else:
                if wait_ms == 0:
                    return None
                RATE_LIMIT_REJECTIONS.labels(backend="redis").inc()
                return max(1, math.ceil(wait_ms / 1000))
        wait = self._local.hit(principal)
        if wait is None:
            return None
        RATE_LIMIT_REJECTIONS.labels(backend="memory").inc()
        return max(1, math.ceil(wait))
