"""The node cache as the graphs use it: hits and misses counted per node."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langgraph.cache.base import BaseCache, FullKey, Namespace

from agent_service.metrics import NODE_CACHE_HITS, NODE_CACHE_MISSES


def _node_of(key: FullKey) -> str:
    # LangGraph's keys are (("__pregel_ns_writes", <function id>, [<node>]), <hash>).
    namespace = key[0]
    label = namespace[2] if len(namespace) > 2 else namespace[-1]
    return label.rsplit(".", 1)[-1]


class MeteredCache(BaseCache[Any]):
    def __init__(self, inner: BaseCache[Any]) -> None:
        super().__init__(serde=inner.serde)
        self.inner = inner

    def _count(self, keys: Sequence[FullKey], found: Mapping[FullKey, Any]) -> None:
        for key in keys:
            (NODE_CACHE_HITS if key in found else NODE_CACHE_MISSES).labels(_node_of(key)).inc()

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        found = self.inner.get(keys)
        self._count(keys, found)
        return found

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        found = await self.inner.aget(keys)
        self._count(keys, found)
        return found

    def set(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        self.inner.set(pairs)

    async def aset(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        await self.inner.aset(pairs)

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        self.inner.clear(namespaces)

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        await self.inner.aclear(namespaces)
