"""The graphs' node cache (`compile(cache=...)`): Redis when REDIS_URL is set, shared by every
replica; a bounded in-process LRU otherwise and while Redis is unreachable.

LangGraph's own RedisCache calls a synchronous client from the event loop; here the Redis
round trips run in a worker thread so a slow Redis never stalls other requests, and a circuit
breaker sends calls to the local layer for a few seconds after a failure.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, cast

import redis
import structlog
from langgraph.cache.base import BaseCache, FullKey, Namespace
from redis.exceptions import RedisError

from agent_service.core.circuit import Circuit
from agent_service.core.redis_access import NODE_CACHE_PREFIX

log = structlog.get_logger(__name__)

KEY_PREFIX = NODE_CACHE_PREFIX
LOCAL_MAX_ENTRIES = 10_000


def _redis_key(ns: Namespace, key: str) -> str:
    return KEY_PREFIX + "/".join(ns) + "|" + key


def _namespace_pattern(ns: Namespace) -> str:
    escaped = "/".join(part.replace("*", r"\*").replace("?", r"\?") for part in ns)
    return KEY_PREFIX + escaped + "|*"


class _LocalLru:
    """Bounded, TTL-aware, thread-safe; entries are serialized like Redis ones."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            value, expires = entry
            if expires is not None and time.monotonic() >= expires:
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return value

    def set(self, key: str, value: bytes, ttl: int | None) -> None:
        with self._lock:
            self._data[key] = (value, None if ttl is None else time.monotonic() + ttl)
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def clear(self, prefixes: Sequence[str] | None) -> None:
        with self._lock:
            if prefixes is None:
                self._data.clear()
                return
            for key in [k for k in self._data if k.startswith(tuple(prefixes))]:
                del self._data[key]


class NodeCache(BaseCache[Any]):
    def __init__(self, client: redis.Redis | None, *, local_max_entries: int = LOCAL_MAX_ENTRIES):
        super().__init__()
        self._redis = client
        self._local = _LocalLru(local_max_entries)
        self._circuit = Circuit()
        self.hits = 0
        self.misses = 0

    @property
    def backend(self) -> str:
        return "redis" if self._redis is not None else "memory"

    def _use_redis(self) -> redis.Redis | None:
        return self._redis if self._redis is not None and self._circuit.closed else None

    def _redis_failed(self, exc: Exception) -> None:
        if self._circuit.trip():
            log.warning("node cache falls back to in-process", reason=type(exc).__name__)

    def _encode(self, value: Any) -> bytes:
        encoding, data = self.serde.dumps_typed(value)
        return encoding.encode() + b":" + data

    def _decode(self, raw: bytes) -> Any:
        encoding, _, data = raw.partition(b":")
        return self.serde.loads_typed((encoding.decode(), data))

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        if not keys:
            return {}
        names = [_redis_key(ns, key) for ns, key in keys]
        raws: list[bytes | None] = [None] * len(names)
        client = self._use_redis()
        if client is not None:
            try:
                raws = cast(list[bytes | None], client.mget(names))
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
                raws = [self._local.get(name) for name in names]
        else:
            raws = [self._local.get(name) for name in names]
        found: dict[FullKey, Any] = {}
        for full_key, raw in zip(keys, raws, strict=True):
            if raw is None:
                continue
            try:
                found[full_key] = self._decode(raw)
            except Exception:  # noqa: S112 - a corrupt entry is a miss, never a failed run
                continue
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        return await asyncio.to_thread(self.get, keys)

    def set(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        if not pairs:
            return
        encoded = {
            _redis_key(ns, key): (self._encode(value), ttl)
            for (ns, key), (value, ttl) in pairs.items()
        }
        client = self._use_redis()
        if client is not None:
            try:
                pipe = client.pipeline(transaction=False)
                for name, (raw, ttl) in encoded.items():
                    pipe.set(name, raw, ex=ttl)
                pipe.execute()
                return
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
        for name, (raw, ttl) in encoded.items():
            self._local.set(name, raw, ttl)

    async def aset(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        await asyncio.to_thread(self.set, pairs)

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        patterns = (
            [KEY_PREFIX + "*"]
            if namespaces is None
            else [_namespace_pattern(ns) for ns in namespaces]
        )
        self._local.clear(
            None if namespaces is None else [KEY_PREFIX + "/".join(ns) + "|" for ns in namespaces]
        )
        client = self._use_redis()
        if client is None:
            return
        try:
            for pattern in patterns:
                batch = list(client.scan_iter(match=pattern, count=500))
                if batch:
                    client.delete(*batch)
        except (RedisError, OSError) as exc:
            self._redis_failed(exc)

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        await asyncio.to_thread(self.clear, namespaces)
