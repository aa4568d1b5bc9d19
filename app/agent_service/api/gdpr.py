"""GDPR: export everything stored for a user, or delete it all. Both are audit-logged.

A user here is a principal (the graphs key cross-thread memory by the principal). A principal
may act on its own data; ADMIN_PRINCIPALS may act on anyone's. Data held: the service tables'
threads and runs, every checkpoint of those threads, and the store items in the user's
namespaces: the user's own space `("users", <user>, ...)` (what the Store API and the graphs'
memories write) and the service's records about the user `(<kind>, <user>)`. A delete keeps
`("usage", <user>)`, the daily model-call counts that enforce the user's budget (export shows
them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import APIRouter, Depends, Request
from langgraph.store.base import BaseStore, Item

from agent_service.api.crons import cron_json
from agent_service.api.deps import Services, get_services, principal_of, require_role
from agent_service.core.principal import USAGE_NAMESPACE, user_namespace
from agent_service.core.serialization import to_jsonable
from agent_service.graphs.assistants import assistant_json
from agent_service.runs.events import run_log, thread_log

# Whose data a principal may act on `_authorize` decides (own: user; anyone's: admin).
router = APIRouter(tags=["gdpr"], dependencies=[Depends(require_role("user", "admin"))])
log = structlog.get_logger(__name__)

_PAGE = 500


def _authorize(services: Services, principal: str, user_id: str) -> None:
    if principal == user_id:
        services.access.require(principal, "user", "admin", action="acting on one's own data")
    else:
        services.access.require(principal, "admin", action="acting on another user's data")


async def _user_namespaces(store: BaseStore, user_id: str) -> list[tuple[str, ...]]:
    """The user's namespaces: the service's records `(<kind>, <user>)` and everything under
    the user's own root `("users", <user>)`. Matching the user id as any label made a user
    named "memories" everyone's owner."""
    namespaces: list[tuple[str, ...]] = []
    offset = 0
    while True:
        page = await store.alist_namespaces(suffix=(user_id,), limit=_PAGE, offset=offset)
        namespaces += [ns for ns in page if len(ns) == 2 and ns[1] == user_id]
        if len(page) < _PAGE:
            break
        offset += _PAGE
    offset = 0
    while True:
        page = await store.alist_namespaces(
            prefix=user_namespace(user_id), limit=_PAGE, offset=offset
        )
        namespaces += page
        if len(page) < _PAGE:
            return namespaces
        offset += _PAGE


async def _items(store: BaseStore, namespace: tuple[str, ...]) -> list[Item]:
    items: list[Item] = []
    offset = 0
    while True:
        page = await store.asearch(namespace, limit=_PAGE, offset=offset)
        items += [item for item in page if item.namespace == namespace]
        if len(page) < _PAGE:
            return items
        offset += _PAGE


@router.get("/users/{user_id}/export")
async def export_user(request: Request, user_id: str) -> dict[str, Any]:
    services = get_services(request)
    principal = principal_of(request)
    _authorize(services, principal, user_id)
    persistence = services.persistence
    threads = await persistence.tables.user_threads(user_id)
    exported_threads = []
    for thread in threads:
        checkpoints = [
            {
                "checkpoint_id": saved.config["configurable"].get("checkpoint_id"),
                "checkpoint_ns": saved.config["configurable"].get("checkpoint_ns", ""),
                "created_at": saved.checkpoint.get("ts"),
                "values": to_jsonable(saved.checkpoint.get("channel_values", {})),
                "metadata": to_jsonable(saved.metadata),
            }
            async for saved in persistence.checkpointer.alist(
                {"configurable": {"thread_id": thread.thread_id}}
            )
        ]
        exported_threads.append(
            {
                "thread_id": thread.thread_id,
                "graph_id": thread.graph_id,
                "metadata": thread.metadata,
                "status": thread.status,
                "created_at": thread.created_at.isoformat(),
                "updated_at": thread.updated_at.isoformat(),
                "checkpoints": checkpoints,
            }
        )
    store_items = []
    for namespace in await _user_namespaces(persistence.store, user_id):
        for item in await _items(persistence.store, namespace):
            store_items.append(
                {
                    "namespace": list(item.namespace),
                    "key": item.key,
                    "value": to_jsonable(item.value),
                    "created_at": item.created_at.isoformat(),
                    "updated_at": item.updated_at.isoformat(),
                }
            )
    runs = [
        {
            "run_id": run.run_id,
            "thread_id": run.thread_id,
            "assistant_id": run.assistant_id,
            "status": run.status,
            "metadata": run.metadata,
            "created_at": run.created_at.isoformat(),
        }
        for run in await persistence.tables.user_runs(user_id)
    ]
    assistants = [
        assistant_json(version)
        for assistant in await persistence.tables.owner_assistants(user_id)
        for version in await persistence.tables.assistant_versions(assistant.assistant_id, user_id)
    ]
    crons = [cron_json(cron) for cron in await persistence.crons.user_crons(user_id)]
    summary = {
        "threads": len(exported_threads),
        "runs": len(runs),
        "store_items": len(store_items),
        "assistant_versions": len(assistants),
        "crons": len(crons),
    }
    await persistence.tables.audit(principal, "gdpr.export", user_id, summary)
    log.info("gdpr export", principal=principal, subject=user_id, **summary)
    audit = [
        {
            "at": entry.at.isoformat(),
            "principal": entry.principal,
            "action": entry.action,
            "detail": entry.detail,
        }
        for entry in await persistence.tables.audit_entries(user_id)
    ]
    return {
        "user_id": user_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "threads": exported_threads,
        "runs": runs,
        "crons": crons,
        "store": store_items,
        "assistants": assistants,
        "audit": audit,
    }


@router.delete("/users/{user_id}")
async def delete_user(request: Request, user_id: str) -> dict[str, Any]:
    services = get_services(request)
    principal = principal_of(request)
    _authorize(services, principal, user_id)
    persistence = services.persistence
    # Crons first: none may fire a new run for the user while the rest goes.
    cron_rows = await persistence.crons.delete_user(user_id)
    thread_ids = [thread.thread_id for thread in await persistence.tables.user_threads(user_id)]
    run_ids = [run.run_id for run in await persistence.tables.user_runs(user_id)]
    # Rows first: from here on no run anywhere may write to these threads
    # (`persistence.guard`); then this process's runs on them are stopped and awaited, so
    # nothing is written after their checkpoints are deleted.
    thread_rows, run_rows = await persistence.tables.delete_user(user_id)
    stopped = await services.runs.stop_threads(thread_ids)
    # Background runs' event logs (their inputs and outputs) in Redis go with them.
    await services.queue.events.discard(
        [run_log(run_id) for run_id in run_ids] + [thread_log(tid) for tid in thread_ids]
    )
    for thread_id in thread_ids:
        # An id someone created again since the rows went is theirs (and was purged then).
        if await persistence.tables.thread_owner(thread_id) is None:
            await persistence.checkpointer.adelete_thread(thread_id)
    deleted_items = 0
    for namespace in await _user_namespaces(persistence.store, user_id):
        if namespace[0] == USAGE_NAMESPACE:
            # The daily model-call count is the operator's accounting, not the user's content
            # (a number per day): deleting it would reset the user's budget.
            continue
        for item in await _items(persistence.store, namespace):
            await persistence.store.adelete(item.namespace, item.key)
            deleted_items += 1
    assistants = await persistence.tables.delete_owner_assistants(user_id)
    summary = {
        "threads": thread_rows,
        "runs": run_rows,
        "store_items": deleted_items,
        "assistants": assistants,
        "crons": cron_rows,
    }
    # The audit entry outlives the data: it records that the deletion happened, not content.
    await persistence.tables.audit(principal, "gdpr.delete", user_id, summary)
    log.info("gdpr delete", principal=principal, subject=user_id, runs_stopped=stopped, **summary)
    return {"user_id": user_id, "deleted": summary}
