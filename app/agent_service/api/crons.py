"""Cron endpoints, as langgraph-sdk's CronClient calls them. Every cron belongs to the
principal that created it: another principal's cron answers 404 like a missing one and never
appears in a search or a count.

LangGraph's server: https://docs.langchain.com/langsmith/cron-jobs (a stateless cron runs each
firing on a new thread, deleted afterwards unless `on_run_completed="keep"`; a thread's cron
runs on that thread).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from agent_service.api.deps import Services, get_services, principal_of, require_role
from agent_service.api.errors import ApiError, not_found
from agent_service.api.threads import owned_thread
from agent_service.core.request_context import annotate
from agent_service.core.serialization import to_jsonable
from agent_service.crons.models import (
    CronCount,
    CronCreate,
    CronSearch,
    CronUpdate,
    ThreadCronCreate,
)
from agent_service.crons.schedule import ScheduleError, next_firing, validate
from agent_service.crons.scheduler import run_body
from agent_service.persistence.cron_tables import CronQuery, CronRecord
from agent_service.runs.webhooks import WebhookRejected, check_webhook_url

router = APIRouter(tags=["crons"], dependencies=[Depends(require_role("user"))])


def cron_json(cron: CronRecord, select: Sequence[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cron_id": cron.cron_id,
        "assistant_id": cron.assistant_id,
        "thread_id": cron.thread_id,
        "on_run_completed": cron.on_run_completed,
        "end_time": None if cron.end_time is None else cron.end_time.isoformat(),
        "schedule": cron.schedule,
        "timezone": cron.timezone,
        "created_at": cron.created_at.isoformat(),
        "updated_at": cron.updated_at.isoformat(),
        "payload": to_jsonable({"assistant_id": cron.assistant_id, **cron.payload}),
        "user_id": cron.owner,
        "next_run_date": None if cron.next_run_at is None else cron.next_run_at.isoformat(),
        "metadata": cron.metadata,
        "enabled": cron.enabled,
    }
    if select:
        body["now"] = datetime.now(UTC).isoformat()
        return {name: body[name] for name in select}
    return body


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(
        422,
        "validation_error",
        f"invalid request: {field}: {message}",
        errors=[{"field": field, "message": message}],
    )


def _check_schedule(services: Services, schedule: str, timezone: str | None) -> None:
    try:
        validate(schedule, timezone, services.settings.cron_min_interval_seconds)
    except ScheduleError as exc:
        field, _, message = str(exc).partition(": ")
        raise _invalid(field, message) from None


def _check_payload(services: Services, cron: CronRecord) -> None:
    """The payload as the scheduler will fire it must be a valid run body now."""
    webhook = cron.payload.get("webhook")
    if webhook is not None:
        try:
            check_webhook_url(str(webhook), services.settings)
        except WebhookRejected as exc:
            raise _invalid("webhook", str(exc)) from None
    try:
        run_body(cron, cron.created_at)
    except ValueError as exc:
        raise ApiError(422, "validation_error", f"invalid request: {exc}") from None


async def _graph_of(services: Services, principal: str, assistant_id: str) -> str:
    """The graph of a built-in assistant or of one the principal created (404 otherwise),
    which the principal must be allowed to use (403)."""
    assistant = await services.catalog.lookup(principal, assistant_id)
    if assistant is None:
        raise not_found("assistant", assistant_id)
    services.access.require_graph(principal, assistant.graph_id)
    return assistant.graph_id


async def _create(
    request: Request, body: ThreadCronCreate, thread_id: str | None
) -> dict[str, Any]:
    services = get_services(request)
    principal = principal_of(request)
    graph_id = await _graph_of(services, principal, body.assistant_id)
    if thread_id is not None:
        thread = await owned_thread(services, thread_id, principal)
        if thread.graph_id is not None and thread.graph_id != graph_id:
            raise ApiError(
                409,
                "graph_mismatch",
                f"thread {thread_id!r} runs graph {thread.graph_id!r}, not {graph_id!r}",
            )
    _check_schedule(services, body.schedule, body.timezone)
    crons = services.persistence.crons
    limit = services.settings.cron_max_per_principal
    if await crons.count(CronQuery(owner=principal)) >= limit:
        raise ApiError(
            409,
            "cron_limit",
            f"principal {principal!r} has {limit} crons already (CRON_MAX_PER_PRINCIPAL); "
            "delete one first",
        )
    now = datetime.now(UTC)
    payload = body.run_fields()
    payload["multitask_strategy"] = body.multitask_strategy
    cron = CronRecord(
        cron_id=str(uuid.uuid4()),
        owner=principal,
        assistant_id=body.assistant_id,
        graph_id=graph_id,
        thread_id=thread_id,
        schedule=body.schedule,
        timezone=body.timezone,
        payload=payload,
        metadata=body.metadata,
        on_run_completed=(body.on_run_completed or "delete")
        if isinstance(body, CronCreate)
        else None,
        enabled=body.enabled,
        end_time=body.end_time,
        next_run_at=(
            next_firing(body.schedule, body.timezone, now, body.end_time) if body.enabled else None
        ),
        created_at=now,
        updated_at=now,
    )
    _check_payload(services, cron)
    await crons.create(cron)
    annotate(cron_id=cron.cron_id)
    return cron_json(cron)


@router.post("/runs/crons")
async def create_cron(request: Request, body: CronCreate) -> dict[str, Any]:
    return await _create(request, body, None)


@router.post("/threads/{thread_id}/runs/crons")
async def create_thread_cron(
    request: Request, thread_id: str, body: ThreadCronCreate
) -> dict[str, Any]:
    return await _create(request, body, thread_id)


@router.post("/runs/crons/search")
async def search_crons(request: Request, body: CronSearch) -> list[dict[str, Any]]:
    services = get_services(request)
    found = await services.persistence.crons.search(
        CronQuery(
            owner=principal_of(request),
            assistant_id=body.assistant_id,
            thread_id=body.thread_id,
            enabled=body.enabled,
            metadata=body.metadata,
            limit=body.limit,
            offset=body.offset,
            sort_by=body.sort_by,
            sort_order=body.sort_order,
        )
    )
    select = None if body.select is None else list(body.select)
    return [cron_json(cron, select) for cron in found]


@router.post("/runs/crons/count")
async def count_crons(request: Request, body: CronCount) -> int:
    services = get_services(request)
    return await services.persistence.crons.count(
        CronQuery(
            owner=principal_of(request),
            assistant_id=body.assistant_id,
            thread_id=body.thread_id,
            metadata=body.metadata,
        )
    )


async def _owned(services: Services, cron_id: str, principal: str) -> CronRecord:
    annotate(cron_id=cron_id)
    cron = await services.persistence.crons.get(cron_id, principal)
    if cron is None:
        raise not_found("cron", cron_id)
    return cron


@router.patch("/runs/crons/{cron_id}")
async def update_cron(request: Request, cron_id: str, body: CronUpdate) -> dict[str, Any]:
    services = get_services(request)
    principal = principal_of(request)
    cron = await _owned(services, cron_id, principal)
    # The graph may have left the principal's allow-list since: changing the cron needs it.
    services.access.require_graph(principal, cron.graph_id)
    given = body.model_fields_set
    if body.on_run_completed is not None and cron.thread_id is not None:
        raise _invalid("on_run_completed", "applies to stateless crons only")
    schedule = body.schedule or cron.schedule
    timezone = body.timezone if body.timezone is not None else cron.timezone
    if body.schedule is not None or body.timezone is not None:
        _check_schedule(services, schedule, timezone)
    now = datetime.now(UTC)
    end_time = body.end_time if "end_time" in given else cron.end_time
    enabled = cron.enabled if body.enabled is None else body.enabled
    timing_changed = (
        schedule != cron.schedule
        or timezone != cron.timezone
        or end_time != cron.end_time
        or enabled != cron.enabled
    )
    next_run_at = cron.next_run_at
    if timing_changed:
        next_run_at = next_firing(schedule, timezone, now, end_time) if enabled else None
    updated = replace(
        cron,
        schedule=schedule,
        timezone=timezone,
        payload={**cron.payload, **body.run_fields()},
        metadata={**cron.metadata, **(body.metadata or {})},
        on_run_completed=body.on_run_completed or cron.on_run_completed,
        enabled=enabled,
        end_time=end_time,
        next_run_at=next_run_at,
        updated_at=now,
    )
    _check_payload(services, updated)
    if not await services.persistence.crons.save(updated):
        raise not_found("cron", cron_id)
    return cron_json(updated)


@router.delete("/runs/crons/{cron_id}", status_code=204)
async def delete_cron(request: Request, cron_id: str) -> Response:
    services = get_services(request)
    annotate(cron_id=cron_id)
    if not await services.persistence.crons.delete(cron_id, principal_of(request)):
        raise not_found("cron", cron_id)
    return Response(status_code=204)
