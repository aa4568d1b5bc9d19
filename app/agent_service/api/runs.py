"""Run endpoints: wait and stream, on a thread or stateless, plus `/invoke`."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from agent_service.api.errors import error_response, not_found
from agent_service.api.models import InvokeRequest, RunCreate
from agent_service.api.principal import principal_of
from agent_service.api.run_engine import Finished, PreparedRun, RunEngine, RunningRun
from agent_service.api.serialization import to_jsonable
from agent_service.persistence.errors import describe_unavailable, is_unavailable
from agent_service.server.services import get_services

router = APIRouter(tags=["runs"])


def _failure(engine: RunEngine, prepared: PreparedRun, finished: Finished) -> JSONResponse:
    timeout = engine.timeout_seconds
    ids: dict[str, Any] = {"run_id": prepared.run_id, "thread_id": prepared.thread_id}
    if finished.outcome == "timeout":
        return error_response(
            504,
            "timeout",
            f"the run exceeded the request timeout of {timeout:g} s; the thread keeps its "
            "last checkpoint: run it again with no input to resume",
            resumable=not prepared.stateless,
            **ids,
        )
    error = finished.error
    if error is not None and is_unavailable(error):
        engine.database_failed()
        return error_response(503, "database_unavailable", describe_unavailable(error), **ids)
    if finished.outcome == "cancelled":
        return error_response(
            503, "cancelled", "the run was cancelled (server shutting down)", **ids
        )
    name = "Exception" if error is None else type(error).__name__
    return error_response(500, "run_failed", f"the run failed: {name}: {error}", **ids)


async def _wait(engine: RunEngine, prepared: PreparedRun) -> Response:
    running = engine.start(prepared, stream=False)
    finished = Finished("error")
    try:
        async for item in running.events():
            if isinstance(item, Finished):
                finished = item
    finally:
        _maybe_cancel(running)
    headers = {"Content-Location": prepared.location}
    if finished.outcome in ("success", "interrupted"):
        values = running.translator.last_values
        return JSONResponse(to_jsonable(values if values is not None else {}), headers=headers)
    response = _failure(engine, prepared, finished)
    response.headers.update(headers)
    return response


def _maybe_cancel(running: RunningRun) -> None:
    # A vanished client cancels its run only when it asked for that; by default the run
    # finishes (bounded by the request timeout) and its result stays on the thread.
    task = running.task
    if running.prepared.body.on_disconnect == "cancel" and task is not None and not task.done():
        task.cancel()


def _sse(event: str, data: Any) -> bytes:
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return f"event: {event}\ndata: {payload}\n\n".encode()


def _stream(engine: RunEngine, prepared: PreparedRun) -> StreamingResponse:
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
                        failure = _failure(engine, prepared, item)
                        detail = json.loads(bytes(failure.body))
                        yield _sse("error", {"error": detail["error"], "message": detail["detail"]})
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


@router.post("/threads/{thread_id}/runs/wait")
async def thread_run_wait(request: Request, thread_id: str, body: RunCreate) -> Response:
    engine = RunEngine(get_services(request))
    return await _wait(engine, await engine.prepare(principal_of(request), thread_id, body))


@router.post("/threads/{thread_id}/runs/stream")
async def thread_run_stream(request: Request, thread_id: str, body: RunCreate) -> Response:
    engine = RunEngine(get_services(request))
    return _stream(engine, await engine.prepare(principal_of(request), thread_id, body))


@router.post("/runs/wait")
async def stateless_run_wait(request: Request, body: RunCreate) -> Response:
    engine = RunEngine(get_services(request))
    return await _wait(engine, await engine.prepare(principal_of(request), None, body))


@router.post("/runs/stream")
async def stateless_run_stream(request: Request, body: RunCreate) -> Response:
    engine = RunEngine(get_services(request))
    return _stream(engine, await engine.prepare(principal_of(request), None, body))


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
    engine = RunEngine(get_services(request))
    thread_id = body.thread_id or str(uuid.uuid4())
    prepared = await engine.prepare(principal_of(request), thread_id, run)
    response = await _wait(engine, prepared)
    if response.status_code != 200:
        return response
    return JSONResponse(
        {
            "thread_id": prepared.thread_id,
            "run_id": prepared.run_id,
            "output": json.loads(bytes(response.body)),
        },
        headers={"Content-Location": prepared.location},
    )
