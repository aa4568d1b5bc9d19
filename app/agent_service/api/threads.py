"""Thread endpoints. Every lookup is scoped to the caller: another principal's thread answers
404 exactly like a missing one, and never appears in a search."""

from __future__ import annotations

import uuid
from typing import Any, get_args

from fastapi import APIRouter, Depends, Request, Response
from langchain_core.runnables import RunnableConfig

from agent_service.api.deps import Services, get_services, principal_of, require_role
from agent_service.api.errors import ApiError, not_found
from agent_service.api.models import HistoryRequest, ThreadCreate, ThreadSearch
from agent_service.core.request_context import annotate
from agent_service.core.serialization import thread_state, to_jsonable
from agent_service.graphs.source import Graph
from agent_service.persistence.records import (
    RunStatus,
    ThreadExistsError,
    ThreadQuery,
    ThreadRecord,
)
from agent_service.runs.errors import ThreadIdUnavailable

router = APIRouter(tags=["threads"])
_USER = [Depends(require_role("user"))]
_USER_OR_APPROVER = [Depends(require_role("user", "approver"))]


def thread_json(
    thread: ThreadRecord, values: Any = None, interrupts: dict[str, Any] | None = None
) -> dict[str, Any]:
    metadata = dict(thread.metadata)
    if thread.graph_id is not None:
        metadata.setdefault("graph_id", thread.graph_id)
    return {
        "thread_id": thread.thread_id,
        "created_at": thread.created_at.isoformat(),
        "updated_at": thread.updated_at.isoformat(),
        "metadata": metadata,
        "status": thread.status,
        "values": values,
        "interrupts": interrupts or {},
    }


async def readable_thread(services: Services, thread_id: str, principal: str) -> ThreadRecord:
    """The caller's own thread; for an approver also another principal's thread while it
    waits for an approval (so the approver can read what it approves)."""
    access = services.access
    if access.has(principal, "user"):
        try:
            return await owned_thread(services, thread_id, principal)
        except ApiError:
            if not access.has(principal, "approver"):
                raise
    owner = await services.persistence.tables.thread_owner(thread_id)
    thread = (
        None if owner is None else await services.persistence.tables.get_thread(thread_id, owner)
    )
    if (
        thread is None
        or thread.status != "interrupted"
        or thread.graph_id not in access.approval_graphs
    ):
        raise not_found("thread", thread_id)
    annotate(thread_id=thread_id, graph=thread.graph_id)
    return thread


async def owned_thread(services: Services, thread_id: str, principal: str) -> ThreadRecord:
    annotate(thread_id=thread_id)
    thread = await services.persistence.tables.get_thread(thread_id, principal)
    if thread is None:
        raise not_found("thread", thread_id)
    annotate(graph=thread.graph_id)
    return thread


def _graph_of(services: Services, thread: ThreadRecord) -> Graph | None:
    return None if thread.graph_id is None else services.graphs.get(thread.graph_id)


def _config(thread_id: str, checkpoint: dict[str, Any] | None = None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread_id}
    if checkpoint:
        for key in ("checkpoint_ns", "checkpoint_id"):
            if checkpoint.get(key) is not None:
                configurable[key] = checkpoint[key]
    return {"configurable": configurable}


def _empty_state(thread_id: str) -> dict[str, Any]:
    return {
        "values": {},
        "next": [],
        "tasks": [],
        "metadata": {},
        "created_at": None,
        "checkpoint": {
            "thread_id": thread_id,
            "checkpoint_ns": "",
            "checkpoint_id": None,
            "checkpoint_map": None,
        },
        "parent_checkpoint": None,
        "interrupts": [],
    }


@router.post("/threads", dependencies=_USER)
async def create_thread(request: Request, body: ThreadCreate) -> dict[str, Any]:
    services = get_services(request)
    principal = principal_of(request)
    thread_id = body.thread_id or str(uuid.uuid4())
    graph_id = body.metadata.get("graph_id")
    if graph_id is not None and services.catalog.resolve(str(graph_id)) is None:
        raise ApiError(422, "validation_error", f"metadata.graph_id: unknown graph {graph_id!r}")
    if graph_id is not None:
        services.access.require_graph(principal, str(services.catalog.resolve(str(graph_id))))
    annotate(thread_id=thread_id)
    tables = services.persistence.tables
    try:
        thread = await tables.create_thread(
            thread_id,
            principal,
            body.metadata,
            None if graph_id is None else services.catalog.resolve(str(graph_id)),
        )
    except ThreadExistsError:
        existing = await tables.get_thread(thread_id, principal)
        if existing is None:
            raise ThreadIdUnavailable(thread_id) from None
        if body.if_exists == "do_nothing":
            return thread_json(existing)
        raise ApiError(409, "thread_exists", f"thread {thread_id!r} already exists") from None
    return thread_json(thread)


@router.get("/threads/{thread_id}", dependencies=_USER_OR_APPROVER)
async def get_thread(request: Request, thread_id: str) -> dict[str, Any]:
    services = get_services(request)
    thread = await readable_thread(services, thread_id, principal_of(request))
    graph = _graph_of(services, thread)
    if graph is None:
        return thread_json(thread)
    snapshot = await graph.aget_state(_config(thread_id))
    interrupts = {
        task.id: to_jsonable(task.interrupts) for task in snapshot.tasks if task.interrupts
    }
    return thread_json(thread, to_jsonable(snapshot.values), interrupts)


@router.delete("/threads/{thread_id}", status_code=204, dependencies=_USER)
async def delete_thread(request: Request, thread_id: str) -> Response:
    services = get_services(request)
    principal = principal_of(request)
    thread = await owned_thread(services, thread_id, principal)
    if thread.status == "busy":
        # Deleting under a running run would let it write checkpoints to a deleted thread.
        raise ApiError(
            409, "thread_busy", f"thread {thread_id!r} has a run in progress; delete it after"
        )
    runs = await services.queue.tables.runs_matching(
        principal, thread_id, None, list(get_args(RunStatus))
    )
    # The row first: from then on no run may write to the thread (`persistence.guard`).
    await services.persistence.tables.delete_thread(thread_id, principal)
    await services.runs.stop_threads([thread_id])
    await services.queue.events.discard([run.run_id for run in runs])
    await services.persistence.checkpointer.adelete_thread(thread_id)
    return Response(status_code=204)


@router.post("/threads/search", dependencies=_USER)
async def search_threads(request: Request, body: ThreadSearch) -> list[dict[str, Any]]:
    services = get_services(request)
    threads = await services.persistence.tables.search_threads(
        ThreadQuery(
            owner=principal_of(request),
            metadata=body.metadata,
            ids=body.ids,
            status=body.status,
            limit=body.limit,
            offset=body.offset,
            sort_by=body.sort_by,
            sort_order=body.sort_order,
        )
    )
    return [thread_json(thread) for thread in threads]


@router.get("/threads/{thread_id}/state", dependencies=_USER_OR_APPROVER)
async def get_state(request: Request, thread_id: str) -> dict[str, Any]:
    services = get_services(request)
    thread = await readable_thread(services, thread_id, principal_of(request))
    graph = _graph_of(services, thread)
    if graph is None:
        return _empty_state(thread_id)
    return thread_state(await graph.aget_state(_config(thread_id)))


@router.post("/threads/{thread_id}/history", dependencies=_USER)
async def get_history(
    request: Request, thread_id: str, body: HistoryRequest
) -> list[dict[str, Any]]:
    services = get_services(request)
    thread = await owned_thread(services, thread_id, principal_of(request))
    graph = _graph_of(services, thread)
    if graph is None:
        return []
    before = body.before
    before_config = None
    if isinstance(before, str):
        before_config = _config(thread_id, {"checkpoint_id": before})
    elif before is not None:
        before_config = _config(thread_id, before.model_dump())
    checkpoint = None if body.checkpoint is None else body.checkpoint.model_dump()
    return [
        thread_state(snapshot)
        async for snapshot in graph.aget_state_history(
            _config(thread_id, checkpoint),
            filter=body.metadata,
            before=before_config,
            limit=body.limit,
        )
    ]
