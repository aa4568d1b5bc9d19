"""Assistants: one built-in per graph, with a stable id derived from the graph id (either the id
or the graph id itself names it, as in the LangGraph Server), shared and read-only; plus the
assistants each principal creates through the API (`persistence.assistant_tables`), visible to
their creator only. A run resolves its `assistant_id` here, getting the assistant's graph and
the config and context it contributes to the run."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent_service.persistence.records import AssistantRecord, AssistantTables

# Fixed namespace so every replica and every release derives the same assistant ids.
_ASSISTANT_NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")


def assistant_id_for(graph_id: str) -> str:
    return str(uuid.uuid5(_ASSISTANT_NAMESPACE, graph_id))


@dataclass(frozen=True)
class ResolvedAssistant:
    assistant_id: str
    graph_id: str
    config: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)

    def merged(
        self, config: dict[str, Any] | None, context: dict[str, Any] | None
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """A run's config and context on top of the assistant's, as LangGraph's server merges
        them: the run's keys win; `configurable` is merged key by key."""
        run_configurable = (config or {}).get("configurable")
        if not isinstance(run_configurable, dict | None):
            return config, context  # the run's own check names the bad field
        merged_config = {**self.config, **(config or {})}
        configurable = {**(self.config.get("configurable") or {}), **(run_configurable or {})}
        if configurable:
            merged_config["configurable"] = configurable
        merged_context = {**self.context, **(context or {})}
        return (merged_config or config), (merged_context or context)


def assistant_json(record: AssistantRecord) -> dict[str, Any]:
    fields = record.fields
    return {
        "assistant_id": record.assistant_id,
        "graph_id": fields.graph_id,
        "name": fields.name,
        "description": fields.description,
        "config": fields.config,
        "context": fields.context,
        "metadata": fields.metadata,
        "version": record.version,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
    }


class AssistantCatalog:
    def __init__(
        self,
        graph_ids: Iterable[str],
        descriptions: dict[str, str] | None = None,
        stored: AssistantTables | None = None,
    ):
        self._created = datetime.now(UTC).isoformat()
        self._by_id: dict[str, str] = {}
        self._descriptions = descriptions or {}
        self.stored = stored
        self.graph_ids = list(graph_ids)
        for graph_id in self.graph_ids:
            self._by_id[assistant_id_for(graph_id)] = graph_id
            self._by_id[graph_id] = graph_id

    def resolve(self, assistant_id: str) -> str | None:
        """The graph id behind a built-in assistant's id or graph id, or None."""
        return self._by_id.get(assistant_id)

    async def lookup(self, principal: str, assistant_id: str) -> ResolvedAssistant | None:
        """The assistant a run of `principal` names: a built-in one, or one of its own whose
        graph the service still serves. None: no such assistant for this principal."""
        graph_id = self.resolve(assistant_id)
        if graph_id is not None:
            return ResolvedAssistant(assistant_id_for(graph_id), graph_id)
        if self.stored is None:
            return None
        record = await self.stored.get_assistant(assistant_id, principal)
        if record is None or record.fields.graph_id not in self.graph_ids:
            return None
        return ResolvedAssistant(
            record.assistant_id,
            record.fields.graph_id,
            record.fields.config,
            record.fields.context,
        )

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
