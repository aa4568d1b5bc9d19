"""Translate LangGraph stream chunks into the LangGraph Server API's SSE events.

- `values`, `updates`, `custom`, `debug`, `tasks`, `checkpoints`: event named after the mode.
- `messages-tuple`: event `messages` with `[message, metadata]`.
- `messages`: `messages/metadata` when a message first appears, `messages/partial` with the
  message accumulated so far for each chunk, `messages/complete` when it is whole.
- Subgraph events carry their namespace: `updates|parent:task_id`.
- `events`: event `events` with each of LangChain's `astream_events` (v2) events (the engine
  streams through `astream_events` then, and takes the other modes from the graph's own
  `on_chain_stream` events).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk

from agent_service.core.serialization import to_jsonable

# What each requested mode needs LangGraph to stream.
_LANGGRAPH_MODE = {"messages-tuple": "messages"}


def langgraph_modes(requested: Sequence[str]) -> list[str]:
    """The LangGraph stream modes for the requested API modes; `values` is always included
    because the final values (and their interrupts) decide the run's outcome."""
    modes = {_LANGGRAPH_MODE.get(mode, mode) for mode in requested} | {"values"}
    # `events` is not a LangGraph stream mode: astream_events produces it.
    return sorted(modes - {"events"})


class EventTranslator:
    def __init__(self, requested: Sequence[str], *, subgraphs: bool) -> None:
        self.requested = list(requested)
        self._requested = set(requested)
        self._subgraphs = subgraphs
        self._partial: dict[str, BaseMessageChunk] = {}
        self._seen: set[str] = set()
        self.last_values: Any = None
        self.interrupted = False

    def translate(self, ns: Sequence[str], mode: str, chunk: Any) -> Iterator[tuple[str, Any]]:
        root = not ns
        if mode == "values" and root:
            self.last_values = chunk
            if isinstance(chunk, dict) and chunk.get("__interrupt__"):
                self.interrupted = True
        if not root and not self._subgraphs:
            return
        suffix = "" if root else "|" + "|".join(ns)
        if mode == "messages":
            yield from self._messages(chunk, suffix)
        elif mode in self._requested:
            yield mode + suffix, to_jsonable(chunk)

    def _messages(self, chunk: Any, suffix: str) -> Iterator[tuple[str, Any]]:
        message, metadata = chunk
        if "messages-tuple" in self._requested:
            yield "messages" + suffix, [to_jsonable(message), to_jsonable(metadata)]
        if "messages" not in self._requested or not isinstance(message, BaseMessage):
            return
        message_id = message.id or ""
        if message_id not in self._seen:
            self._seen.add(message_id)
            yield (
                "messages/metadata" + suffix,
                {message_id: {"metadata": to_jsonable(metadata)}},
            )
        if isinstance(message, BaseMessageChunk):
            previous = self._partial.get(message_id)
            merged = message if previous is None else previous + message
            self._partial[message_id] = merged
            yield "messages/partial" + suffix, [to_jsonable(merged)]
        else:
            self._partial.pop(message_id, None)
            yield "messages/complete" + suffix, [to_jsonable(message)]

    def flush(self) -> Iterator[tuple[str, Any]]:
        """Messages streamed only as chunks are complete once the run ends."""
        for message in self._partial.values():
            yield "messages/complete", [to_jsonable(message)]
        self._partial.clear()
