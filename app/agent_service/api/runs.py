"""Run endpoints: wait and stream, on a thread or stateless, plus `/invoke`."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from agent_service.api.deps import Services, get_services, principal_of, require_role
from agent_service.api.errors import ApiError, not_found
from agent_service.api.models import InvokeRequest
from agent_service.core.serialization import to_jsonable
from agent_service.persistence.errors import describe_unavailable, is_unavailable
from agent_service.persistence.guard import ThreadGone
from agent_service.runs.engine import (
    Finished,
    PreparedRun,
    RunEngine,
    RunningRun,
    run_error_type,
    run_failure_message,
)
from agent_service.runs.models import RunCreate
from agent_service.runs.tracker import DELETED

# What a run may do beyond this (approver-only resumes, graph allow-lists) the engine decides.
router = APIRouter(tags=["runs"], dependencies=[Depends(require_role("user", "approver"))])


def _engine(services: Services) -> RunEngine:
    return RunEngine(
        persistence=services.persistence,
        graphs=services.graphs,
        catalog=services.catalog,
        tracker=services.runs,
        access=services.access,
        timeout_seconds=services.settings.request_timeout_seconds,
    )


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


def _sse(event: str, data: Any) -> bytes:
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return f"event: {event}\ndata: {payload}\n\n".encode()


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


async def _run_wait(request: Request, thread_id: str | None, body: RunCreate) -> Response:
    services = get_services(request)
    engine = _engine(services)
    prepared = await _prepare(engine, request, thread_id, body)
    values = await _wait(services, engine, prepared)
    return JSONResponse(to_jsonable(values), headers={"Content-Location": prepared.location})


async def _run_stream(request: Request, thread_id: str | None, body: RunCreate) -> Response:
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


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(request: Request, thread_id: str, run_id: str) -> dict[str, Any]:
    tables = get_services(request).persistence.tables
    run = await tables.get_run(run_id, principal_of(request))
    if run is None or run.thread_id != thread_id:
        raise not_found("run", run_id)
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
    }


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
