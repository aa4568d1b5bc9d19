"""Thread endpoints. Every lookup is scoped to the caller: another principal's thread answers
404 exactly like a missing one, and never appears in a search."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Query, Request, Response
from langchain_core.messages import convert_to_messages
from langchain_core.runnables import RunnableConfig
from langgraph.errors import EmptyInputError, InvalidUpdateError
from langgraph.types import StateUpdate as LgStateUpdate
from pydantic import ValidationError

from agent_service.api.deps import Services, get_services, principal_of, require_role
from agent_service.api.errors import ApiError, not_found
from agent_service.api.models import (
    HistoryRequest,
    StateAtCheckpoint,
    StateUpdate,
    Superstep,
    ThreadCount,
    ThreadCreate,
    ThreadPatch,
    ThreadPrune,
    ThreadSearch,
)
from agent_service.auth.access import Forbidden
from agent_service.core.request_context import annotate
from agent_service.core.serialization import checkpoint_ref, thread_state, to_jsonable
from agent_service.graphs.source import Graph
from agent_service.persistence.guard import ThreadGone
from agent_service.persistence.records import (
    KEEP_TTL,
    RunStatus,
    ThreadExistsError,
    ThreadQuery,
    ThreadRecord,
    ThreadStatus,
)
from agent_service.persistence.thread_history import copy_checkpoints, keep_latest
from agent_service.runs.engine import LEASE_SECONDS
from agent_service.runs.errors import ThreadIdUnavailable
from agent_service.runs.events import run_log, thread_log

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
        **({} if thread.ttl_minutes is None else {"ttl": _ttl_json(thread.ttl_minutes)}),
    }


def _ttl_json(minutes: float) -> dict[str, Any]:
    return {"ttl": minutes, "strategy": "delete"}


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


def selected(state: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    """Only the fields `select` names (`values.<key>`: one key of the values), as
    langgraph-sdk's `select` asks; everything without it."""
    if not select:
        return state
    picked: dict[str, Any] = {}
    values = state.get("values")
    for name in select:
        if name.startswith("values."):
            key = name.removeprefix("values.")
            part = picked.setdefault("values", {})
            if isinstance(values, dict) and key in values and isinstance(part, dict):
                part[key] = values[key]
        else:
            picked[name] = state.get(name)
    return picked


SelectQuery = Annotated[list[str] | None, Query()]


def _select_query(select: list[str] | None) -> list[str] | None:
    try:
        return StateAtCheckpoint.model_validate({"checkpoint": {}, "select": select}).select
    except ValidationError as exc:
        raise ApiError(422, "validation_error", f"select: {exc.errors()[0]['msg']}") from None


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
    served = None if graph_id is None else services.catalog.resolve(str(graph_id))
    graph = None if served is None else services.graphs[served]
    if body.supersteps is not None:
        if served is None or graph is None:
            raise ApiError(
                422, "validation_error", "supersteps: give metadata.graph_id, the graph they are of"
            )
        for step in body.supersteps:
            for update in step.updates:
                check = StateUpdate(values=update.values, as_node=update.as_node)
                _check_update(services, served, graph, check)
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
    if body.ttl is not None:
        thread = await tables.update_thread(thread_id, principal, {}, body.ttl.ttl) or thread
    if body.supersteps is not None and graph is not None:
        try:
            thread = await _apply_supersteps(services, thread, graph, body.supersteps)
        except BaseException:
            await tables.delete_thread(thread_id, principal)
            await services.persistence.checkpointer.adelete_thread(thread_id)
            raise
    return thread_json(thread)


async def _apply_supersteps(
    services: Services, thread: ThreadRecord, graph: Graph, supersteps: list[Superstep]
) -> ThreadRecord:
    """Write the supersteps as checkpoints (`Pregel.abulk_update_state`), each update as if
    its node had run; the new thread's status follows from the state they leave."""
    config = _config(thread.thread_id)
    config["configurable"]["user_id"] = thread.owner
    steps = [[LgStateUpdate(u.values, u.as_node) for u in step.updates] for step in supersteps]
    try:
        written = await graph.abulk_update_state(config, steps)
        snapshot = await graph.aget_state(written)
    except (InvalidUpdateError, EmptyInputError, ValueError, TypeError) as exc:
        raise ApiError(422, "validation_error", f"supersteps: {_first_line(exc)}") from None
    if snapshot.interrupts:
        await _set_status(services, thread.thread_id, thread.owner, "interrupted")
    return await services.persistence.tables.get_thread(thread.thread_id, thread.owner) or thread


@router.patch("/threads/{thread_id}", dependencies=_USER, response_model=None)
async def update_thread(request: Request, thread_id: str, body: ThreadPatch) -> Any:
    """Merge metadata (top-level keys, as LangGraph's server does) and set the TTL."""
    services = get_services(request)
    principal = principal_of(request)
    annotate(thread_id=thread_id)
    if "graph_id" in body.metadata:
        # The graph a thread runs is the service's record (runs check it): not client metadata.
        raise ApiError(
            422, "validation_error", "metadata.graph_id: set when the thread is created or run"
        )
    thread = await services.persistence.tables.update_thread(
        thread_id, principal, body.metadata, KEEP_TTL if body.ttl is None else body.ttl.ttl
    )
    if thread is None:
        raise not_found("thread", thread_id)
    if request.headers.get("prefer", "").replace(" ", "") == "return=minimal":
        return Response(status_code=204)
    return thread_json(thread)


@router.post("/threads/count", dependencies=_USER)
async def count_threads(request: Request, body: ThreadCount) -> int:
    services = get_services(request)
    return await services.persistence.tables.count_threads(
        ThreadQuery(owner=principal_of(request), metadata=body.metadata, status=body.status)
    )


@router.post("/threads/prune", dependencies=_USER)
async def prune_threads(request: Request, body: ThreadPrune) -> dict[str, int]:
    """The caller's threads among `thread_ids`, deleted or cut to their latest checkpoint.
    Another principal's, unknown and busy threads are left alone and not counted."""
    services = get_services(request)
    principal = principal_of(request)
    pruned = 0
    for thread_id in dict.fromkeys(body.thread_ids):
        thread = await services.persistence.tables.get_thread(thread_id, principal)
        if thread is None or thread.status == "busy":
            continue
        if body.strategy == "delete":
            await _delete(services, thread_id, principal)
        else:
            # Under the thread's lease: no run starts (and saves checkpoints) while it prunes.
            holder = f"prune-{uuid.uuid4()}"
            tables = services.persistence.tables
            if not await tables.acquire_thread(thread_id, principal, holder, LEASE_SECONDS):
                continue
            try:
                await keep_latest(services.persistence, thread_id)
            finally:
                await tables.release_thread(thread_id, holder, thread.status)
        pruned += 1
    return {"pruned_count": pruned}


@router.post("/threads/{thread_id}/copy", dependencies=_USER)
async def copy_thread(request: Request, thread_id: str) -> dict[str, Any]:
    """A new thread of the caller's with the source's metadata, TTL and whole checkpoint
    history; its id is new, so nothing a deleted thread left behind can surface in it."""
    services = get_services(request)
    principal = principal_of(request)
    source = await owned_thread(services, thread_id, principal)
    tables = services.persistence.tables
    copy_id = str(uuid.uuid4())
    await tables.create_thread(copy_id, principal, dict(source.metadata), source.graph_id)
    try:
        await copy_checkpoints(services.persistence.checkpointer, thread_id, copy_id, principal)
        status: ThreadStatus = "idle" if source.status == "busy" else source.status
        await _set_status(services, copy_id, principal, status)
        if source.ttl_minutes is not None:
            await tables.update_thread(copy_id, principal, {}, source.ttl_minutes)
    except BaseException:
        await tables.delete_thread(copy_id, principal)
        await services.persistence.checkpointer.adelete_thread(copy_id)
        raise
    copied = await tables.get_thread(copy_id, principal)
    if copied is None:  # deleted by its owner between two statements
        raise not_found("thread", copy_id)
    return thread_json(copied)


async def _set_status(services: Services, thread_id: str, owner: str, status: ThreadStatus) -> bool:
    """Set a thread's status through the lease (so never under a running run)."""
    tables = services.persistence.tables
    holder = f"status-{uuid.uuid4()}"
    if not await tables.acquire_thread(thread_id, owner, holder, LEASE_SECONDS):
        return False
    await tables.release_thread(thread_id, holder, status)
    return True


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
    await _delete(services, thread_id, principal)
    return Response(status_code=204)


async def _delete(services: Services, thread_id: str, principal: str) -> None:
    runs = await services.queue.tables.runs_matching(
        principal, thread_id, None, list(get_args(RunStatus))
    )
    # The row first: from then on no run may write to the thread (`persistence.guard`).
    await services.persistence.tables.delete_thread(thread_id, principal)
    await services.runs.stop_threads([thread_id])
    await services.queue.events.discard(
        [run_log(run.run_id) for run in runs] + [thread_log(thread_id)]
    )
    await services.persistence.checkpointer.adelete_thread(thread_id)


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
    found = [thread_json(thread) for thread in threads]
    if body.select is None:
        return found
    return [{name: item.get(name) for name in body.select} for item in found]


@router.get("/threads/{thread_id}/state", dependencies=_USER_OR_APPROVER)
async def get_state(request: Request, thread_id: str, select: SelectQuery = None) -> dict[str, Any]:
    fields = _select_query(select)
    services = get_services(request)
    thread = await readable_thread(services, thread_id, principal_of(request))
    graph = _graph_of(services, thread)
    if graph is None:
        return selected(_empty_state(thread_id), fields)
    return selected(thread_state(await graph.aget_state(_config(thread_id))), fields)


async def _state_at(
    services: Services, thread: ThreadRecord, checkpoint: dict[str, Any], principal: str
) -> dict[str, Any]:
    graph = _graph_of(services, thread)
    if graph is None or (checkpoint.get("checkpoint_id") and thread.owner != principal):
        # An approver reads another principal's waiting thread as it is now, not its past.
        raise not_found("checkpoint", str(checkpoint.get("checkpoint_id")))
    snapshot = await graph.aget_state(_config(thread.thread_id, checkpoint))
    if checkpoint.get("checkpoint_id") and snapshot.created_at is None:
        raise not_found("checkpoint", str(checkpoint["checkpoint_id"]))
    return thread_state(snapshot)


@router.get("/threads/{thread_id}/state/{checkpoint_id}", dependencies=_USER_OR_APPROVER)
async def get_state_at(
    request: Request,
    thread_id: str,
    checkpoint_id: str,
    select: SelectQuery = None,
) -> dict[str, Any]:
    fields = _select_query(select)
    services = get_services(request)
    thread = await readable_thread(services, thread_id, principal_of(request))
    return selected(
        await _state_at(services, thread, {"checkpoint_id": checkpoint_id}, principal_of(request)),
        fields,
    )


@router.post("/threads/{thread_id}/state/checkpoint", dependencies=_USER_OR_APPROVER)
async def post_state_at(
    request: Request, thread_id: str, body: StateAtCheckpoint
) -> dict[str, Any]:
    """What RemoteGraph.get_state calls; the checkpoint's thread_id, if any, is ignored: the
    path names the thread."""
    services = get_services(request)
    thread = await readable_thread(services, thread_id, principal_of(request))
    if body.checkpoint.checkpoint_id is None and _graph_of(services, thread) is None:
        return selected(_empty_state(thread_id), body.select)
    return selected(
        await _state_at(services, thread, body.checkpoint.model_dump(), principal_of(request)),
        body.select,
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


def _check_update(services: Services, graph_id: str, graph: Graph, body: StateUpdate) -> None:
    """Refuse what would fail inside LangGraph (a 500) or skip an approval."""
    if graph_id in services.access.approval_graphs:
        # Writing the state "as" a node is a way past the approval step (as_node naming the
        # approval node, or values carrying the tool call it guards): such a graph changes
        # state only through its runs, exactly as a run's command may only resume.
        raise Forbidden(
            f"graph {graph_id!r} has approval steps: its state changes only through runs "
            "(threads.update_state is refused)"
        )
    if body.as_node is not None and body.as_node not in graph.nodes:
        raise ApiError(
            422,
            "validation_error",
            f"as_node: no node named {body.as_node[:200]!r} in graph {graph_id!r}; its nodes "
            f"are {sorted(n for n in graph.nodes if not n.startswith('__'))}",
        )
    if isinstance(body.values, dict) and "messages" in body.values:
        messages = body.values["messages"]
        try:
            convert_to_messages(messages if isinstance(messages, list) else [messages])
        except Exception as exc:
            raise ApiError(
                422, "validation_error", f"values.messages: {_first_line(exc)}"
            ) from None
    if isinstance(body.values, dict):
        channels = {name for name in graph.channels if not name.startswith("__")}
        unknown = sorted(set(body.values) - channels)
        if unknown:
            raise ApiError(
                422,
                "validation_error",
                f"values: graph {graph_id!r} has no channel {unknown[:10]}; "
                f"its channels are {sorted(channels)}",
            )


@router.post("/threads/{thread_id}/state", dependencies=_USER)
async def update_state(request: Request, thread_id: str, body: StateUpdate) -> dict[str, Any]:
    """A new checkpoint as if `as_node` had written `values` (LangGraph's
    `Pregel.aupdate_state`), on the latest checkpoint or the one named (a fork)."""
    services = get_services(request)
    principal = principal_of(request)
    thread = await owned_thread(services, thread_id, principal)
    graph = _graph_of(services, thread)
    if graph is None:
        raise ApiError(
            409,
            "thread_has_no_graph",
            f"thread {thread_id!r} has no graph yet: run it, or create it with "
            "metadata.graph_id, before updating its state",
        )
    services.access.require_graph(principal, str(thread.graph_id))
    _check_update(services, str(thread.graph_id), graph, body)
    checkpoint = {} if body.checkpoint is None else body.checkpoint.model_dump()
    if body.checkpoint_id is not None:
        checkpoint["checkpoint_id"] = body.checkpoint_id
    config = _config(thread_id, checkpoint)
    if (
        checkpoint.get("checkpoint_id")
        and await services.persistence.checkpointer.aget_tuple(config) is None
    ):
        raise not_found("checkpoint", str(checkpoint["checkpoint_id"]))
    # The owner guard checks every checkpoint write against this user.
    config["configurable"]["user_id"] = principal
    holder = f"update-state-{uuid.uuid4()}"
    tables = services.persistence.tables
    if not await tables.acquire_thread(thread_id, principal, holder, LEASE_SECONDS):
        raise ApiError(
            409, "thread_busy", f"thread {thread_id!r} has a run in progress; update it after"
        )
    status: ThreadStatus = "idle" if thread.status == "busy" else thread.status
    try:
        written = await graph.aupdate_state(config, body.values, as_node=body.as_node)
        snapshot = await graph.aget_state(written)
        status = "interrupted" if snapshot.interrupts else "idle"
    except (InvalidUpdateError, EmptyInputError, ValueError, TypeError) as exc:
        # What the graph's reducers and LangGraph refuse in the update (a value of the wrong
        # type, a checkpoint namespace no subgraph has): the request's fault, never a 500.
        raise ApiError(422, "validation_error", f"values: {_first_line(exc)}") from None
    except ThreadGone:
        raise not_found("thread", thread_id) from None
    finally:
        await tables.release_thread(thread_id, holder, status)
    return {"checkpoint": checkpoint_ref(written)}


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
        selected(thread_state(snapshot), body.select)
        async for snapshot in graph.aget_state_history(
            _config(thread_id, checkpoint),
            filter=body.metadata,
            before=before_config,
            limit=body.limit,
        )
    ]
