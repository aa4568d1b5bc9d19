"""Per-principal sliding-window rate limit: in Redis when REDIS_URL is set (shared by every
replica), in-process otherwise or while Redis is unreachable."""

from __future__ import annotations

import math
import time
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
# Local grants are kept for at most this many principals (a flood of distinct principals,
# e.g. failed-auth client addresses, cannot grow the map without bound).
MAX_PRINCIPALS = 10_000

# Grants up to ARGV[3] requests at once from a sliding window counted per second on the Redis
# clock (replicas' clocks may differ): a hash of second -> requests granted in that second;
# seconds older than the window are dropped. Returns {granted, ms until a request frees}.
# One-second buckets make the window exact to a second, where the old per-request sorted set
# was exact to a millisecond and cost a round trip for every request.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local buckets = redis.call('HGETALL', KEYS[1])
local used = 0
local oldest = now
for i = 1, #buckets, 2 do
  local second = tonumber(buckets[i])
  if second <= now - window then
    redis.call('HDEL', KEYS[1], buckets[i])
  else
    used = used + tonumber(buckets[i + 1])
    if second < oldest then oldest = second end
  end
end
local granted = math.min(want, limit - used)
if granted > 0 then
  redis.call('HINCRBY', KEYS[1], now, granted)
  redis.call('EXPIRE', KEYS[1], window + 1)
  return {granted, 0}
end
local micros = tonumber(t[2])
return {0, math.max(1, (oldest + window - now) * 1000 - math.floor(micros / 1000))}
"""
# How many requests one Redis round trip may grant a replica: 1% of the limit, at most 100.
# A limit under 100 per window goes to Redis for every request, exactly as before.
BATCH_SHARE = 0.01
MAX_BATCH = 100
# Granted requests not used within this long are dropped (they stay counted in Redis: the
# limiter errs on refusing early, never on admitting more than the limit).
GRANT_TTL_SECONDS = 1.0


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


class _Grant:
    __slots__ = ("blocked_until", "expires", "tokens")

    def __init__(self) -> None:
        self.tokens = 0
        self.expires = 0.0
        self.blocked_until = 0.0


class RateLimiter:
    """Per principal, `limit_per_minute` requests in any sliding minute across every replica.

    With Redis a replica takes requests from the shared window in batches (`_batch`), so most
    requests are admitted from a local grant with no round trip; a refusal is remembered until
    the window frees a request. A replica can therefore refuse up to one batch early (granted,
    unused, expired), never admit more than the limit."""

    def __init__(
        self,
        limit_per_minute: int,
        redis_client: aioredis.Redis | None,
        window_seconds: float = WINDOW_SECONDS,
    ) -> None:
        self._limit = limit_per_minute
        self._window = window_seconds
        self._redis = redis_client
        self._script = None if redis_client is None else redis_client.register_script(_TAKE)
        self._local = LocalWindow(limit_per_minute, window_seconds)
        self._circuit = Circuit()
        self._batch = max(1, min(MAX_BATCH, int(limit_per_minute * BATCH_SHARE)))
        self._grants: dict[str, _Grant] = {}

    @property
    def limit(self) -> int:
        return self._limit

    def _granted(self, principal: str, now: float) -> int | None:
        """From the local grant: None admitted, a wait when refused, 0 to ask Redis."""
        grant = self._grants.get(principal)
        if grant is None:
            return 0
        if now < grant.blocked_until:
            return max(1, math.ceil(grant.blocked_until - now))
        if grant.tokens > 0 and now < grant.expires:
            grant.tokens -= 1
            return None
        return 0

    async def _take(self, principal: str) -> int | None:
        assert self._script is not None
        granted, wait_ms = (
            int(value)
            for value in await self._script(
                keys=[KEY_PREFIX + principal],
                args=[int(self._window), self._limit, self._batch],
            )
        )
        now = time.monotonic()
        if len(self._grants) > MAX_PRINCIPALS:
            self._grants.clear()
        grant = self._grants.setdefault(principal, _Grant())
        if granted > 0:
            grant.tokens = granted - 1
            grant.expires = now + GRANT_TTL_SECONDS
            grant.blocked_until = 0.0
            return None
        grant.tokens = 0
        grant.blocked_until = now + wait_ms / 1000
        RATE_LIMIT_REJECTIONS.labels(backend="redis").inc()
        return max(1, math.ceil(wait_ms / 1000))

    async def hit(self, principal: str) -> int | None:
        """Count one request; None when admitted, else whole seconds to wait (>= 1)."""
        if self._script is not None and self._circuit.closed:
            local = self._granted(principal, time.monotonic())
            if local is None:
                return None
            if local > 0:
                RATE_LIMIT_REJECTIONS.labels(backend="redis").inc()
                return local
            try:
                return await self._take(principal)
            except (RedisError, OSError) as exc:
                if self._circuit.trip():
                    log.warning(
                        "rate limiter falls back to in-process counting",
                        reason=type(exc).__name__,
                    )
        wait = self._local.hit(principal)
        if wait is None:
            return None
        RATE_LIMIT_REJECTIONS.labels(backend="memory").inc()
        return max(1, math.ceil(wait))
