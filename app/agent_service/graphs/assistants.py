"""Assistants: one per graph, with a stable id derived from the graph id. Either the id or the
graph id itself names an assistant (as in the LangGraph Server)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

# Fixed namespace so every replica and every release derives the same assistant ids.
_ASSISTANT_NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")


def assistant_id_for(graph_id: str) -> str:
    return str(uuid.uuid5(_ASSISTANT_NAMESPACE, graph_id))


class AssistantCatalog:
    def __init__(self, graph_ids: Iterable[str], descriptions: dict[str, str] | None = None):
        self._created = datetime.now(UTC).isoformat()
        self._by_id: dict[str, str] = {}
        self._descriptions = descriptions or {}
        self.graph_ids = list(graph_ids)
        for graph_id in self.graph_ids:
            self._by_id[assistant_id_for(graph_id)] = graph_id
            self._by_id[graph_id] = graph_id

    def resolve(self, assistant_id: str) -> str | None:
        """The graph id behind an assistant id or graph id, or None."""
        return self._by_id.get(assistant_id)

    def describe(self, graph_id: str) -> dict[str, Any]:
        return {
            "assistant_id": assistant_id_for(graph_id),
            "graph_id": graph_id,
            "name": graph_id,
            "description": self._descriptions.get(graph_id),
            "config": {},
            "context": {},
            "metadata": {"created_by": "system"},
            "version": 1,
            "created_at": self._created,
            "updated_at": self._created,
        }
