"""Run endpoints: wait and stream (inline), create and batch (background, `runs.queue`), on a
thread or stateless; get, list, join, cancel and delete a run; plus `/invoke`."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import Field

from agent_service.api.deps import Services, get_services, principal_of, require_role
from agent_service.api.errors import RUN_ERRORS, ApiError, not_found
from agent_service.api.models import MAX_LIMIT, MAX_OFFSET, InvokeRequest
from agent_service.core.request_body import Body
from agent_service.core.serialization import GraphJSONResponse, to_jsonable
from agent_service.persistence.errors import describe_unavailable, is_unavailable
from agent_service.persistence.guard import ThreadGone
from agent_service.persistence.records import RunRecord, RunStatus
from agent_service.persistence.run_queue import ACTIVE_STATUSES, CancelAction, RunListQuery
from agent_service.runs.engine import (
    Finished,
    PreparedRun,
    RunEngine,
    RunningRun,
    cancel_action,
    run_error_type,
    run_failure_message,
)
from agent_service.runs.errors import RunError
from agent_service.runs.events import follow, run_log, thread_log
from agent_service.runs.models import MAX_THREAD_ID, RunCreate
from agent_service.runs.tracker import DELETED

# Runs one /runs/batch request may create.
MAX_BATCH = 100
# An event id: a Redis stream entry id ("<ms>-<seq>", each part a 64-bit unsigned integer, so
# 19 digits always fit and 20 may not) or the in-process log's counter; "-1" and "-" are
# LangGraph's "from the first event".
EVENT_ID = re.compile(r"-1|-|[0-9]{1,19}(-[0-9]{1,19})?")

# What a run may do beyond this (approver-only resumes, graph allow-lists) the engine decides.
router = APIRouter(tags=["runs"], dependencies=[Depends(require_role("user", "approver"))])


def _engine(services: Services) -> RunEngine:
    return services.queue.engine()


async def _prepare(
    engine: RunEngine, request: Request, thread_id: str | None, body: RunCreate
) -> PreparedRun:
    # A RunError raised here becomes its HTTP answer in the app's exception-handler table.
    return await engine.prepare(principal_of(request), thread_id, body)


def _failure(services: Services, prepared: PreparedRun, finished: Finished) -> ApiError:
    """The answer to a run that ended without a result."""
    timeout = services.settings.request_timeout_seconds
    ids: dict[str, Any] = {"run_id": prepared.run_id, "thread_id": prepared.thread_id}
    if finished.outcome == "timeout":
        return ApiError(
            504,
            "timeout",
            f"the run exceeded the request timeout of {timeout:g} s; the thread keeps its "
            "last checkpoint: run it again with no input to resume",
            resumable=not prepared.stateless,
            **ids,
        )
    error = finished.error
    if error is not None and is_unavailable(error):
        services.database_circuit.trip()
        return ApiError(503, "database_unavailable", describe_unavailable(error), **ids)
    if isinstance(error, ThreadGone) or (
        finished.outcome == "cancelled" and error is not None and DELETED in error.args
    ):
        return ApiError(404, "not_found", f"the run stopped: {DELETED}", **ids)
    action = cancel_action(finished)
    if action is not None:
        return ApiError(
            409,
            "run_cancelled",
            f"the run was cancelled ({action}) by runs.cancel or a later run on its thread",
            **ids,
        )
    if finished.outcome == "cancelled":
        return ApiError(503, "cancelled", "the run was cancelled (server shutting down)", **ids)
    return ApiError(500, "run_failed", run_failure_message(error), **ids)


async def _wait(services: Services, engine: RunEngine, prepared: PreparedRun) -> Any:
    """The run's final values; an ApiError when it ended without them."""
    running = engine.start(prepared, stream=False)
    finished = Finished("error")
    try:
        async for item in running.events():
            if isinstance(item, Finished):
                finished = item
    finally:
        _maybe_cancel(running)
    if finished.outcome in ("success", "interrupted"):
        values = running.translator.last_values
        return values if values is not None else {}
    failure = _failure(services, prepared, finished)
    if failure.code == "run_cancelled":
        return {"__error__": {"error": "UserInterrupt", "message": failure.detail}}
    if failure.code == "run_failed":
        # The LangGraph Server's answer to a run that failed: 200 with `__error__`, which
        # langgraph-sdk raises from (or returns, with raise_error=False); the run's status is
        # "error". (langchain-ai/langgraph#6213 shows the server's body.)
        return {"__error__": {"error": run_error_type(finished.error), "message": failure.detail}}
    failure.headers["Content-Location"] = prepared.location
    raise failure


def _maybe_cancel(running: RunningRun) -> None:
    # A vanished client cancels its run only when it asked for that; by default the run
    # finishes (bounded by the request timeout) and its result stays on the thread.
    task = running.task
    if running.prepared.body.on_disconnect == "cancel" and task is not None and not task.done():
        task.cancel()


def _sse(event: str, data: Any, *, event_id: str | None = None) -> bytes:
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    prefix = "" if event_id is None else f"id: {event_id}\n"
    return f"{prefix}event: {event}\ndata: {payload}\n\n".encode()


def _stream(services: Services, engine: RunEngine, prepared: PreparedRun) -> StreamingResponse:
    running = engine.start(prepared, stream=True)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield _sse(
                "metadata",
                {"run_id": prepared.run_id, "thread_id": prepared.thread_id, "attempt": 1},
            )
            async for item in running.events():
                if isinstance(item, Finished):
                    if item.outcome not in ("success", "interrupted"):
                        failure = _failure(services, prepared, item)
                        yield _sse("error", {"error": failure.code, "message": failure.detail})
                    return
                yield _sse(*item)
        finally:
            _maybe_cancel(running)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={
            "Content-Location": prepared.location,
            "Cache-Control": "no-store",
            # Tell nginx-style proxies not to buffer the stream.
            "X-Accel-Buffering": "no",
        },
    )


def _inline_only(body: RunCreate) -> None:
    if body.after_seconds is not None:
        raise ApiError(
            422,
            "validation_error",
            "after_seconds: only a background run (runs.create) can start later",
        )
    if body.stream_resumable:
        raise ApiError(
            422,
            "validation_error",
            "stream_resumable: only a background run (runs.create) keeps its events to "
            "resume from (runs.join_stream with Last-Event-ID)",
        )


async def _run_wait(request: Request, thread_id: str | None, body: RunCreate) -> Response:
    _inline_only(body)
    services = get_services(request)
    engine = _engine(services)
    prepared = await _prepare(engine, request, thread_id, body)
    values = await _wait(services, engine, prepared)
    return GraphJSONResponse(values, headers={"Content-Location": prepared.location})


async def _run_stream(request: Request, thread_id: str | None, body: RunCreate) -> Response:
    _inline_only(body)
    services = get_services(request)
    engine = _engine(services)
    return _stream(services, engine, await _prepare(engine, request, thread_id, body))


@router.post("/threads/{thread_id}/runs/wait")
async def thread_run_wait(request: Request, thread_id: str, body: RunCreate) -> Response:
    return await _run_wait(request, thread_id, body)


@router.post("/threads/{thread_id}/runs/stream")
async def thread_run_stream(request: Request, thread_id: str, body: RunCreate) -> Response:
    return await _run_stream(request, thread_id, body)


@router.post("/runs/wait")
async def stateless_run_wait(request: Request, body: RunCreate) -> Response:
    return await _run_wait(request, None, body)


@router.post("/runs/stream")
async def stateless_run_stream(request: Request, body: RunCreate) -> Response:
    return await _run_stream(request, None, body)


def run_json(run: RunRecord) -> dict[str, Any]:
    """A run as LangGraph's server shows it (`Run` in langgraph-sdk's schema)."""
    return {
        "run_id": run.run_id,
        "thread_id": run.thread_id,
        "assistant_id": run.assistant_id,
        "status": run.status,
        "metadata": run.metadata,
        "multitask_strategy": run.multitask_strategy,
        "created_at": run.created_at.isoformat(),
        "updated_at": run.updated_at.isoformat(),
        "error": run.error,
        "kwargs": {},
    }


def _location(run: RunRecord) -> str:
    return f"/threads/{run.thread_id}/runs/{run.run_id}"


async def _create(request: Request, thread_id: str | None, body: RunCreate) -> Response:
    services = get_services(request)
    record = await services.queue.submit(principal_of(request), thread_id, body)
    return JSONResponse(run_json(record), headers={"Content-Location": _location(record)})


@router.post("/threads/{thread_id}/runs")
async def create_thread_run(request: Request, thread_id: str, body: RunCreate) -> Response:
    return await _create(request, thread_id, body)


@router.post("/runs")
async def create_stateless_run(request: Request, body: RunCreate) -> Response:
    return await _create(request, None, body)


class BatchRun(RunCreate):
    thread_id: str | None = Field(default=None, min_length=1, max_length=MAX_THREAD_ID)


@router.post("/runs/batch")
async def create_batch(request: Request, body: list[BatchRun]) -> list[dict[str, Any]]:
    """Each run is submitted in order; the first refusal answers for the batch, naming its
    index (the runs before it stay submitted, as separate runs.create calls would)."""
    if not 1 <= len(body) <= MAX_BATCH:
        raise ApiError(422, "validation_error", f"body: from 1 to {MAX_BATCH} runs")
    services = get_services(request)
    principal = principal_of(request)
    created: list[dict[str, Any]] = []
    for index, item in enumerate(body):
        run = RunCreate.model_validate(item.model_dump(exclude={"thread_id"}, exclude_unset=True))
        try:
            record = await services.queue.submit(principal, item.thread_id, run)
        except RunError as exc:
            status, code = RUN_ERRORS[type(exc)]
            raise ApiError(
                status, code, f"runs[{index}]: {exc}", submitted=[r["run_id"] for r in created]
            ) from None
        created.append(run_json(record))
    return created


async def _owned_run(request: Request, thread_id: str, run_id: str) -> RunRecord:
    run = await get_services(request).queue.tables.get_run(run_id, principal_of(request))
    if run is None or run.thread_id != thread_id:
        raise not_found("run", run_id)
    return run


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    request: Request,
    thread_id: str,
    limit: int = Query(default=10, ge=1, le=MAX_LIMIT),
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET),
    status: RunStatus | None = None,
) -> list[dict[str, Any]]:
    services = get_services(request)
    principal = principal_of(request)
    if await services.persistence.tables.get_thread(thread_id, principal) is None:
        raise not_found("thread", thread_id)
    runs = await services.queue.tables.list_runs(
        RunListQuery(thread_id, principal, status=status, limit=limit, offset=offset)
    )
    return [run_json(run) for run in runs]


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(request: Request, thread_id: str, run_id: str) -> dict[str, Any]:
    return run_json(await _owned_run(request, thread_id, run_id))


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(request: Request, thread_id: str, run_id: str) -> Response:
    """Wait for the run to end (up to REQUEST_TIMEOUT_SECONDS) and answer what runs.wait would
    have: the final values, or `__error__` for a failed run."""
    services = get_services(request)
    run = await _owned_run(request, thread_id, run_id)
    timeout = services.settings.request_timeout_seconds
    ended = await services.queue.wait_ended(run.run_id, run.owner, timeout)
    location = {"Content-Location": _location(run)}
    if ended is None:
        raise not_found("run", run_id)
    if ended.status in ACTIVE_STATUSES:
        raise ApiError(
            504,
            "timeout",
            f"the run is still {ended.status} after {timeout:g} s; join it again",
            run_id=run_id,
            thread_id=thread_id,
        )
    if ended.status in ("error", "timeout"):
        error = "TimeoutError" if ended.status == "timeout" else "RunError"
        body: Any = {"__error__": {"error": error, "message": ended.error or ended.status}}
        return JSONResponse(body, headers=location)
    queued, output = await services.queue.tables.get_output(run_id)
    if not queued or output is None:
        snapshot = await services.graphs[ended.graph_id].aget_state(
            {"configurable": {"thread_id": thread_id}}
        )
        output = to_jsonable(snapshot.values)
    return JSONResponse(output, headers=location)


# An event's stream mode: its name before any "|<namespace>" (subgraphs) and "/<part>".
def _event_mode(name: str) -> str:
    return name.split("|", 1)[0].split("/", 1)[0]


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_run_stream(
    request: Request,
    thread_id: str,
    run_id: str,
    stream_mode: Annotated[list[str] | None, Query()] = None,
    cancel_on_disconnect: bool = False,
) -> Response:
    """The background run's events as SSE, from any replica (`runs.events`). A run created with
    `stream_resumable` replays its events from the first, or from after `Last-Event-ID`;
    otherwise the stream starts with what comes next. `stream_mode` keeps those modes."""
    services = get_services(request)
    queue = services.queue
    run = await _owned_run(request, thread_id, run_id)
    kwargs = await queue.tables.queued_kwargs(run_id)
    if kwargs is None:
        raise ApiError(
            404, "not_found", f"run {run_id!r} is not a background run: it has no event stream"
        )
    modes = {mode for mode in stream_mode or [] if mode}
    last_event_id = (request.headers.get("last-event-id") or "").strip()
    if last_event_id and not EVENT_ID.fullmatch(last_event_id):
        raise ApiError(422, "validation_error", "Last-Event-ID: not an event id this server sent")
    if last_event_id in ("-1", "-"):
        # LangGraph's API: "-1" asks for every event of a resumable run.
        after = "0"
    elif last_event_id:
        after = last_event_id
    elif kwargs.get("stream_resumable"):
        after = "0"
    else:
        after = await queue.events.last_id(run_log(run_id))

    async def ended() -> bool:
        record = await queue.tables.get_run(run_id, run.owner)
        return record is None or record.status not in ACTIVE_STATUSES

    async def body() -> AsyncIterator[bytes]:
        finished = False
        try:
            async for event_id, name, data in follow(queue.events, run_log(run_id), after, ended):
                if name in ("metadata", "error") or not modes or _event_mode(name) in modes:
                    yield _sse(name, data, event_id=event_id)
            finished = True
        finally:
            if cancel_on_disconnect and not finished:
                await queue.cancel(run, "interrupt")

    location = f"/threads/{thread_id}/runs/{run_id}/stream"
    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={
            # langgraph-sdk reconnects here (with Last-Event-ID) when the stream is cut.
            "Location": location,
            "Content-Location": location,
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        },
    )


_THREAD_STREAM_MODES = frozenset(("run_modes", "lifecycle", "state_update"))


def _thread_event_wanted(modes: set[str], name: str) -> bool:
    if "run_modes" in modes:
        return True
    if "lifecycle" in modes and name in ("metadata", "run_done"):
        return True
    return "state_update" in modes and _event_mode(name) == "values"


@router.get("/threads/{thread_id}/stream")
async def join_thread_stream(request: Request, thread_id: str) -> Response:
    """The events of the thread's background runs, one run after another, until the client
    leaves: `run_modes` (default) every event of each run and `run_done` at its end,
    `lifecycle` only `metadata` (a run starts) and `run_done`, `state_update` only `values`.
    Without `Last-Event-ID` the stream starts with what comes next; `-` replays the log."""
    services = get_services(request)
    queue = services.queue
    if await services.persistence.tables.get_thread(thread_id, principal_of(request)) is None:
        raise not_found("thread", thread_id)
    # langgraph-sdk sends `stream_mode`; LangGraph's API reference names it `stream_modes`.
    requested = [
        mode
        for key in ("stream_mode", "stream_modes")
        for mode in request.query_params.getlist(key)
        if mode
    ]
    unknown = sorted(set(requested) - _THREAD_STREAM_MODES)
    if unknown:
        raise ApiError(
            422,
            "validation_error",
            f"stream_mode: {unknown} is not one of {sorted(_THREAD_STREAM_MODES)}",
        )
    modes = set(requested) or {"run_modes"}
    last_event_id = (request.headers.get("last-event-id") or "").strip()
    if last_event_id and not EVENT_ID.fullmatch(last_event_id):
        raise ApiError(422, "validation_error", "Last-Event-ID: not an event id this server sent")
    name = thread_log(thread_id)
    if last_event_id in ("-", "-1"):
        after = "0"
    elif last_event_id:
        after = last_event_id
    else:
        after = await queue.events.last_id(name)

    async def left() -> bool:
        # The stream stays open while the client does (LangGraph's thread stream too).
        return await request.is_disconnected()

    async def body() -> AsyncIterator[bytes]:
        async for event_id, event, data in follow(queue.events, name, after, left):
            if _thread_event_wanted(modes, event):
                yield _sse(event, data, event_id=event_id)

    location = f"/threads/{thread_id}/stream"
    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={
            "Location": location,
            "Content-Location": location,
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        },
    )


CancelActionQuery = Query(default="interrupt", pattern="^(interrupt|rollback)$")


@router.post(
    "/threads/{thread_id}/runs/{run_id}/cancel",
    status_code=204,
    response_class=Response,
)
async def cancel_run(
    request: Request,
    thread_id: str,
    run_id: str,
    wait: bool = False,
    action: str = CancelActionQuery,
) -> Response:
    """Cancel a pending or running run: `interrupt` keeps what it checkpointed (status
    `interrupted`), `rollback` deletes the run and its checkpoints. `wait=1` answers once the
    run has ended (or is gone)."""
    services = get_services(request)
    run = await _owned_run(request, thread_id, run_id)
    if run.status not in ACTIVE_STATUSES:
        raise ApiError(
            409, "conflict", f"run {run_id!r} has ended ({run.status}); nothing to cancel"
        )
    cancel: CancelAction = "rollback" if action == "rollback" else "interrupt"
    await services.queue.cancel(run, cancel)
    if not wait:
        return Response(status_code=204)
    ended = await services.queue.wait_ended(
        run_id, run.owner, services.settings.request_timeout_seconds
    )
    if ended is not None and ended.status in ACTIVE_STATUSES:
        raise ApiError(504, "timeout", f"run {run_id!r} has not stopped yet; it will")
    return Response(status_code=204)


class CancelMany(Body):
    thread_id: str | None = Field(default=None, min_length=1, max_length=MAX_THREAD_ID)
    run_ids: list[Annotated[str, Field(min_length=1, max_length=MAX_THREAD_ID)]] | None = Field(
        default=None, min_length=1, max_length=MAX_LIMIT
    )
    status: Literal["pending", "running", "all"] | None = None


@router.post("/runs/cancel", status_code=204, response_class=Response)
async def cancel_many(
    request: Request, body: CancelMany, action: str = CancelActionQuery
) -> Response:
    """Cancel the caller's runs on a thread, by id, or by status (pending, running, all)."""
    if body.thread_id is None and body.run_ids is None and body.status is None:
        raise ApiError(
            422, "validation_error", "give thread_id, run_ids or status: which runs to cancel"
        )
    services = get_services(request)
    statuses: list[str] = (
        list(ACTIVE_STATUSES) if body.status in (None, "all") else [str(body.status)]
    )
    runs = await services.queue.tables.runs_matching(
        principal_of(request), body.thread_id, body.run_ids, statuses
    )
    cancel: CancelAction = "rollback" if action == "rollback" else "interrupt"
    for run in runs:
        await services.queue.cancel(run, cancel)
    return Response(status_code=204)


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204, response_class=Response)
async def delete_run(request: Request, thread_id: str, run_id: str) -> Response:
    services = get_services(request)
    run = await _owned_run(request, thread_id, run_id)
    if run.status in ACTIVE_STATUSES:
        raise ApiError(
            409, "conflict", f"run {run_id!r} is {run.status}; cancel it before deleting it"
        )
    if not await services.queue.tables.delete_run(run_id, run.owner):
        raise not_found("run", run_id)
    await services.queue.events.discard([run_log(run_id)])
    return Response(status_code=204)


@router.post("/invoke")
async def invoke(request: Request, body: InvokeRequest) -> Response:
    """One call: run `assistant_id` (main_agent by default) on `thread_id`, created when new,
    and answer the thread's values once the run ends."""
    run = RunCreate(
        assistant_id=body.assistant_id,
        input=body.input,
        config=body.config,
        if_not_exists="create",
        multitask_strategy="reject",
    )
    services = get_services(request)
    engine = _engine(services)
    thread_id = body.thread_id or str(uuid.uuid4())
    prepared = await _prepare(engine, request, thread_id, run)
    values = await _wait(services, engine, prepared)
    return JSONResponse(
        {
            "thread_id": prepared.thread_id,
            "run_id": prepared.run_id,
            "output": to_jsonable(values),
        },
        headers={"Content-Location": prepared.location},
    )
