"""The rate limiter and the node cache on a real Redis, and their in-process fallback."""

from __future__ import annotations

import asyncio

import pytest
import redis
from agent_service.core.ratelimit import LocalWindow, RateLimiter
from agent_service.core.redis_clients import async_redis, sync_redis
from agent_service.persistence.node_cache import NodeCache
from agent_service.settings import Settings

from tools.kit.servers import RedisServer


def test_local_window_slides() -> None:
    window = LocalWindow(limit=2, window_seconds=0.2)
    assert window.hit("p") is None
    assert window.hit("p") is None
    wait = window.hit("p")
    assert wait is not None
    assert 0 < wait <= 0.2
    assert window.hit("q") is None


@pytest.mark.integration
def test_rate_limit_is_shared_through_redis_and_falls_back(redis_server: RedisServer) -> None:
    settings = Settings(redis_url=redis_server.url)

    async def scenario() -> None:
        first, second = async_redis(settings), async_redis(settings)
        assert first is not None
        assert second is not None
        # Two limiters = two replicas: they share one window in Redis.
        replica_a, replica_b = RateLimiter(3, first), RateLimiter(3, second)
        assert [await replica_a.hit("p"), await replica_b.hit("p"), await replica_a.hit("p")] == [
            None,
            None,
            None,
        ]
        retry = await replica_b.hit("p")
        assert retry is not None
        assert 1 <= retry <= 60
        assert await replica_b.hit("other") is None
        redis_server.stop(kill=True)
        # Redis gone: in-process counting takes over at once (a fresh window here).
        assert [await replica_a.hit("p") for _ in range(3)] == [None, None, None]
        assert await replica_a.hit("p") is not None
        await first.aclose()
        await second.aclose()

    asyncio.run(scenario())


@pytest.mark.integration
def test_node_cache_round_trip_ttl_and_fallback(redis_server: RedisServer) -> None:
    client = sync_redis(Settings(redis_url=redis_server.url))
    assert client is not None
    cache = NodeCache(client)
    key = (("research", "worker"), "k1")

    async def scenario() -> None:
        assert await cache.aget([key]) == {}
        await cache.aset({key: ({"answer": 42}, 60)})
        assert await cache.aget([key]) == {key: {"answer": 42}}
        raw = redis.Redis.from_url(redis_server.url)
        [name] = raw.keys("agent-service:node-cache:*")
        assert 0 < raw.ttl(name) <= 60
        # A second cache object (another replica) sees the same entry.
        assert await NodeCache(sync_redis(Settings(redis_url=redis_server.url))).aget([key]) == {
            key: {"answer": 42}
        }
        await cache.aclear([("research", "worker")])
        assert await cache.aget([key]) == {}
        redis_server.stop(kill=True)
        await cache.aset({key: ("local", None)})
        assert await cache.aget([key]) == {key: "local"}
        assert (cache.hits, cache.misses) == (2, 2)

    asyncio.run(scenario())


@pytest.mark.integration
def test_rate_limit_takes_requests_from_redis_in_batches(redis_server: RedisServer) -> None:
    """A limit of 500 a minute: each replica takes 5 requests per round trip, the two together
    never admit more than the limit, and they go to Redis about once per 5 requests."""
    settings = Settings(redis_url=redis_server.url)
    raw = redis.Redis.from_url(redis_server.url)

    def script_calls() -> int:
        stats = raw.info("commandstats")
        return sum(int(stats.get(name, {}).get("calls", 0)) for name in ("cmdstat_evalsha",))

    async def scenario() -> tuple[int, int, int | None]:
        first, second = async_redis(settings), async_redis(settings)
        assert first is not None
        assert second is not None
        replicas = [RateLimiter(500, first), RateLimiter(500, second)]
        admitted = 0
        refusal = None
        for index in range(600):
            wait = await replicas[index % 2].hit("p")
            if wait is None:
                admitted += 1
            else:
                refusal = wait
        trips = script_calls()
        await first.aclose()
        await second.aclose()
        return admitted, trips, refusal

    before = script_calls()
    admitted, trips, refusal = asyncio.run(scenario())
    # Each replica may waste at most its last grant (5); none admits beyond the limit.
    assert 490 <= admitted <= 500
    assert refusal is not None
    assert 1 <= refusal <= 60
    # ~100 grants plus the refusals' first round trip per replica (then remembered locally).
    assert trips - before <= admitted // 5 + 10
