"""Assistants: one per graph, read-only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from agent_service.api.deps import get_services, principal_of, require_role
from agent_service.api.errors import not_found
from agent_service.api.models import AssistantSearch

router = APIRouter(tags=["assistants"], dependencies=[Depends(require_role("user", "approver"))])


@router.post("/assistants/search")
async def search_assistants(request: Request, body: AssistantSearch) -> list[dict[str, Any]]:
    services = get_services(request)
    catalog = services.catalog
    principal = principal_of(request)
    found = []
    for graph_id in catalog.graph_ids:
        if not services.access.may_run(principal, graph_id):
            continue
        assistant = catalog.describe(graph_id)
        if body.graph_id is not None and graph_id != body.graph_id:
            continue
        if body.name is not None and body.name.lower() not in assistant["name"].lower():
            continue
        if any(assistant["metadata"].get(k) != v for k, v in body.metadata.items()):
            continue
        found.append(assistant)
    return found[body.offset : body.offset + body.limit]


@router.get("/assistants/{assistant_id}")
async def get_assistant(request: Request, assistant_id: str) -> dict[str, Any]:
    services = get_services(request)
    graph_id = services.catalog.resolve(assistant_id)
    if graph_id is None:
        raise not_found("assistant", assistant_id)
    services.access.require_graph(principal_of(request), graph_id)
    catalog = services.catalog
    return catalog.describe(graph_id)
