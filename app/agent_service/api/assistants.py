"""Assistants: the built-in one per graph (shared, read-only) and those a principal creates
(its own: another principal's answers 404 exactly like a missing one). Every answer respects
the graph allow-list (PRINCIPAL_GRAPHS): a graph the caller may not use is never listed, and
creating an assistant for it answers 403."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable
from typing import Any, cast

import structlog
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter

from agent_service.api.deps import Services, get_services, principal_of, require_role
from agent_service.api.errors import ApiError, not_found
from agent_service.api.models import (
    AssistantCount,
    AssistantCreate,
    AssistantPatch,
    AssistantSearch,
    AssistantVersionsQuery,
    SetLatest,
)
from agent_service.auth.access import Forbidden
from agent_service.core.request_context import annotate
from agent_service.core.serialization import to_jsonable
from agent_service.graphs.assistants import assistant_json
from agent_service.graphs.source import Graph
from agent_service.persistence.records import (
    MAX_ASSISTANT_VERSIONS,
    AssistantExistsError,
    AssistantFields,
    AssistantRecord,
    AssistantVersionLimitError,
)

log = structlog.get_logger(__name__)
router = APIRouter(tags=["assistants"], dependencies=[Depends(require_role("user", "approver"))])
_USER = [Depends(require_role("user"))]
# Per principal: searches filter the caller's assistants in the process.
MAX_ASSISTANTS_PER_PRINCIPAL = 1000
MAX_XRAY_DEPTH = 16


# ----- reading -----------------------------------------------------------------------------


async def _stored(services: Services, principal: str, assistant_id: str) -> AssistantRecord:
    """The caller's own created assistant; 403 for a built-in one (read-only), else 404."""
    annotate(assistant_id=assistant_id[:200])
    if services.catalog.resolve(assistant_id) is not None:
        raise Forbidden(f"assistant {assistant_id!r} is built in: it is shared and read-only")
    record = await services.persistence.tables.get_assistant(assistant_id, principal)
    if record is None:
        raise not_found("assistant", assistant_id)
    return record


async def _visible(services: Services, principal: str, assistant_id: str) -> dict[str, Any]:
    """An assistant the caller may read and use, as JSON."""
    graph_id = services.catalog.resolve(assistant_id)
    if graph_id is not None:
        services.access.require_graph(principal, graph_id)
        return services.catalog.describe(graph_id)
    record = await services.persistence.tables.get_assistant(assistant_id, principal)
    if record is None:
        raise not_found("assistant", assistant_id)
    services.access.require_graph(principal, record.fields.graph_id)
    return assistant_json(record)


async def _all_visible(services: Services, principal: str) -> list[dict[str, Any]]:
    """Built-in ones first (in the graphs' order), then the caller's own, newest first."""
    catalog = services.catalog
    access = services.access
    built_in = [
        catalog.describe(graph_id)
        for graph_id in catalog.graph_ids
        if access.may_run(principal, graph_id)
    ]
    own = [
        assistant_json(record)
        for record in await services.persistence.tables.owner_assistants(principal)
        if access.may_run(principal, record.fields.graph_id)
    ]
    return built_in + own


def _matches(
    assistant: dict[str, Any], metadata: dict[str, Any], graph_id: str | None, name: str | None
) -> bool:
    if graph_id is not None and assistant["graph_id"] != graph_id:
        return False
    if name is not None and name.lower() not in str(assistant["name"]).lower():
        return False
    return all(
        k in assistant["metadata"] and assistant["metadata"][k] == v for k, v in metadata.items()
    )


@router.post("/assistants/search")
async def search_assistants(request: Request, body: AssistantSearch) -> JSONResponse:
    services = get_services(request)
    found = [
        a
        for a in await _all_visible(services, principal_of(request))
        if _matches(a, body.metadata, body.graph_id, body.name)
    ]
    if body.sort_by is not None:
        key = body.sort_by
        found.sort(key=lambda a: (str(a[key]), a["assistant_id"]))
        if (body.sort_order or "desc") == "desc":
            found.reverse()
    page = found[body.offset : body.offset + body.limit]
    if body.select is not None:
        page = [{k: a[k] for k in body.select} for a in page]
    headers = {}
    if body.offset + body.limit < len(found):
        # langgraph-sdk's search(response_format="object") reads the next page's offset here.
        headers["X-Pagination-Next"] = str(body.offset + body.limit)
    return JSONResponse(page, headers=headers)


@router.post("/assistants/count")
async def count_assistants(request: Request, body: AssistantCount) -> int:
    services = get_services(request)
    return sum(
        _matches(a, body.metadata, body.graph_id, body.name)
        for a in await _all_visible(services, principal_of(request))
    )


@router.get("/assistants/{assistant_id}")
async def get_assistant(request: Request, assistant_id: str) -> dict[str, Any]:
    services = get_services(request)
    return await _visible(services, principal_of(request), assistant_id)


@router.post("/assistants/{assistant_id}/versions")
async def get_versions(
    request: Request, assistant_id: str, body: AssistantVersionsQuery
) -> list[dict[str, Any]]:
    services = get_services(request)
    principal = principal_of(request)
    if services.catalog.resolve(assistant_id) is not None:
        versions = [await _visible(services, principal, assistant_id)]
    else:
        records = await services.persistence.tables.assistant_versions(assistant_id, principal)
        if not records:
            raise not_found("assistant", assistant_id)
        versions = [assistant_json(r) for r in records]
    for version in versions:
        # A version is what the assistant was: it has no time of its own beyond its creation.
        version["created_at"] = version.pop("updated_at")
    wanted = [v for v in versions if _matches(v, body.metadata, None, None)]
    return wanted[body.offset : body.offset + body.limit]


# ----- the graph behind an assistant --------------------------------------------------------


async def _graph(request: Request, assistant_id: str) -> tuple[Graph, dict[str, Any]]:
    services = get_services(request)
    assistant = await _visible(services, principal_of(request), assistant_id)
    return services.graphs[assistant["graph_id"]], assistant


def _xray(value: str) -> bool | int:
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        depth = int(lowered)
    except ValueError:
        raise ApiError(
            422, "validation_error", "xray: true, false or a depth (an integer)"
        ) from None
    if not 0 <= depth <= MAX_XRAY_DEPTH:
        raise ApiError(422, "validation_error", f"xray: a depth from 0 to {MAX_XRAY_DEPTH}")
    return depth


@router.get("/assistants/{assistant_id}/graph")
async def get_graph(
    request: Request, assistant_id: str, xray: str = Query(default="false", max_length=10)
) -> dict[str, Any]:
    """The graph's drawable form (`Graph.to_json()` of `Pregel.get_graph`), as RemoteGraph
    reads it; `xray` includes subgraphs down to that depth."""
    graph, assistant = await _graph(request, assistant_id)
    drawn = await graph.aget_graph(
        {"configurable": assistant["config"].get("configurable", {})}, xray=_xray(xray)
    )
    return cast(dict[str, Any], to_jsonable(drawn.to_json()))


def _schema(what: str, make: Callable[[], Any]) -> dict[str, Any] | None:
    """One JSON schema of a graph, or None (as LangGraph's server answers) when pydantic
    cannot describe its types: a schema the service cannot draw is no reason for a 500."""
    try:
        with warnings.catch_warnings():
            # get_config_jsonschema is deprecated since LangGraph 1.0 (context replaces it);
            # clients still read config_schema.
            warnings.simplefilter("ignore")
            schema = make()
    except Exception as exc:
        log.warning("no JSON schema for a graph", schema=what, reason=type(exc).__name__)
        return None
    return cast(dict[str, Any] | None, to_jsonable(schema))


def _schemas(graph_id: str, graph: Any) -> dict[str, Any]:
    state_type = getattr(getattr(graph, "builder", None), "state_schema", None)
    return {
        "graph_id": graph_id,
        "input_schema": _schema("input", graph.get_input_jsonschema),
        "output_schema": _schema("output", graph.get_output_jsonschema),
        # A StateGraph's state type (Pregel itself has no state schema of its own).
        "state_schema": None
        if state_type is None
        else _schema("state", lambda: TypeAdapter(state_type).json_schema()),
        "config_schema": _schema("config", graph.get_config_jsonschema),
        "context_schema": _schema("context", graph.get_context_jsonschema),
    }


@router.get("/assistants/{assistant_id}/schemas")
async def get_schemas(request: Request, assistant_id: str) -> dict[str, Any]:
    graph, assistant = await _graph(request, assistant_id)
    return _schemas(assistant["graph_id"], graph)


@router.get("/assistants/{assistant_id}/subgraphs")
@router.get("/assistants/{assistant_id}/subgraphs/{namespace}")
async def get_subgraphs(
    request: Request, assistant_id: str, namespace: str | None = None, recurse: bool = False
) -> dict[str, Any]:
    """Each subgraph's schemas by namespace (`Pregel.aget_subgraphs`)."""
    graph, assistant = await _graph(request, assistant_id)
    return {
        name: _schemas(assistant["graph_id"], subgraph)
        async for name, subgraph in graph.aget_subgraphs(namespace=namespace, recurse=recurse)
    }


# ----- writing (role `user`) ----------------------------------------------------------------


def _usable(services: Services, principal: str) -> list[str]:
    return sorted(g for g in services.catalog.graph_ids if services.access.may_run(principal, g))


def _check_graph(services: Services, principal: str, graph_id: str) -> None:
    if graph_id not in services.catalog.graph_ids:
        raise ApiError(
            422,
            "validation_error",
            f"graph_id: unknown graph {graph_id!r}; the graphs are {_usable(services, principal)}",
        )
    services.access.require_graph(principal, graph_id)


@router.post("/assistants", dependencies=_USER)
async def create_assistant(request: Request, body: AssistantCreate) -> dict[str, Any]:
    services = get_services(request)
    principal = principal_of(request)
    _check_graph(services, principal, body.graph_id)
    tables = services.persistence.tables
    assistant_id = str(body.assistant_id or uuid.uuid4())
    annotate(assistant_id=assistant_id)
    if services.catalog.resolve(assistant_id) is not None:
        raise ApiError(409, "assistant_exists", f"assistant {assistant_id!r} is built in")
    existing = await tables.get_assistant(assistant_id, principal)
    if existing is not None:
        if body.if_exists == "do_nothing":
            return assistant_json(existing)
        raise ApiError(409, "assistant_exists", f"assistant {assistant_id!r} already exists")
    if len(await tables.owner_assistants(principal)) >= MAX_ASSISTANTS_PER_PRINCIPAL:
        raise ApiError(
            409,
            "assistant_limit",
            f"principal has {MAX_ASSISTANTS_PER_PRINCIPAL} assistants, the most it may keep; "
            "delete one first",
        )
    fields = AssistantFields(
        graph_id=body.graph_id,
        name=body.name or body.graph_id,
        description=body.description,
        config=body.config,
        context=body.context,
        metadata=body.metadata,
    )
    try:
        record = await tables.create_assistant(assistant_id, principal, fields)
    except AssistantExistsError:
        # Another principal's id (or ours, created just now): the same answer as for a thread.
        raise ApiError(
            409, "assistant_id_unavailable", f"assistant id {assistant_id!r} is taken"
        ) from None
    return assistant_json(record)


@router.patch("/assistants/{assistant_id}", dependencies=_USER)
async def update_assistant(
    request: Request, assistant_id: str, body: AssistantPatch
) -> dict[str, Any]:
    """A new version from the latest: the fields given replace the latest's, metadata is
    merged key by key."""
    services = get_services(request)
    principal = principal_of(request)
    current = (await _stored(services, principal, assistant_id)).fields
    if body.graph_id is not None:
        _check_graph(services, principal, body.graph_id)
    fields = AssistantFields(
        graph_id=body.graph_id or current.graph_id,
        name=body.name or current.name,
        description=current.description if body.description is None else body.description,
        config=current.config if body.config is None else body.config,
        context=current.context if body.context is None else body.context,
        metadata={**current.metadata, **(body.metadata or {})},
    )
    try:
        record = await services.persistence.tables.add_assistant_version(
            assistant_id, principal, fields
        )
    except AssistantVersionLimitError:
        raise ApiError(
            409,
            "assistant_version_limit",
            f"assistant {assistant_id!r} has {MAX_ASSISTANT_VERSIONS} versions, the most it may "
            "keep; create a new assistant",
        ) from None
    if record is None:  # deleted meanwhile
        raise not_found("assistant", assistant_id)
    return assistant_json(record)


@router.post("/assistants/{assistant_id}/latest", dependencies=_USER)
async def set_latest(request: Request, assistant_id: str, body: SetLatest) -> dict[str, Any]:
    services = get_services(request)
    principal = principal_of(request)
    await _stored(services, principal, assistant_id)
    record = await services.persistence.tables.set_latest_assistant(
        assistant_id, principal, body.version
    )
    if record is None:
        raise not_found("assistant version", f"{assistant_id} v{body.version}")
    return assistant_json(record)


@router.delete("/assistants/{assistant_id}", status_code=204, dependencies=_USER)
async def delete_assistant(
    request: Request, assistant_id: str, delete_threads: bool = False
) -> Response:
    if delete_threads:
        # Threads are not linked to the assistant that ran them here (a thread has a graph).
        raise ApiError(422, "validation_error", "'delete_threads' is not supported by this server")
    services = get_services(request)
    principal = principal_of(request)
    await _stored(services, principal, assistant_id)
    if not await services.persistence.tables.delete_assistant(assistant_id, principal):
        raise not_found("assistant", assistant_id)
    return Response(status_code=204)
