"""Redis clients that fail fast: the rate limiter and the node cache both fall back to
in-process state, so a Redis outage must cost a few milliseconds per call, not seconds of
retries with backoff."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from agent_service.settings import Settings

SOCKET_TIMEOUT_SECONDS = 0.5


def async_redis(settings: Settings) -> aioredis.Redis | None:
    if settings.redis_url is None:
        return None
    client: aioredis.Redis = aioredis.Redis.from_url(
        settings.redis_url,
        password=settings.redis_password_value(),
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        retry=AsyncRetry(NoBackoff(), 0),
        health_check_interval=30,
    )
    return client


def sync_redis(settings: Settings) -> redis.Redis | None:
    if settings.redis_url is None:
        return None
    client: redis.Redis = redis.Redis.from_url(
        settings.redis_url,
        password=settings.redis_password_value(),
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )
    return client
