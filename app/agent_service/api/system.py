"""Probes, metrics and server information."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

import agent_service
from agent_service.api.deps import get_services
from agent_service.api.readiness import readiness
from agent_service.metrics import workers_registry
from agent_service.persistence.pool import publish_pool_stats

router = APIRouter(tags=["system"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers. Deliberately checks nothing else."""
    return {"status": "alive"}


@router.get(
    "/ready",
    responses={
        503: {
            "description": "not ready: the body names what is missing",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def ready(request: Request) -> JSONResponse:
    is_ready, body = await readiness(get_services(request))
    return JSONResponse(body, status_code=200 if is_ready else 503)


@router.get("/ok")
async def ok() -> dict[str, bool]:
    return {"ok": True}


@router.get("/info")
async def info(request: Request) -> dict[str, Any]:
    services = get_services(request)
    return {
        "version": agent_service.__version__,
        "model": services.model_description,
        "graphs": services.catalog.graph_ids,
        "persistence": services.persistence.backend,
        "cache": services.cache.backend,
        "flags": {
            "assistants": True,
            "crons": False,
            "langsmith": bool(getattr(request.app.state, "langsmith", False)),
        },
    }


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(request: Request) -> Response:
    services = get_services(request)
    if services.settings.metrics_port:
        # Served on METRICS_PORT, which no Ingress routes; not here, where it would be public.
        return JSONResponse(
            {
                "error": "not_found",
                "detail": f"metrics are served on port {services.settings.metrics_port}",
            },
            status_code=404,
        )
    if services.persistence.pool is not None:
        publish_pool_stats(services.persistence.pool)
    directory = services.settings.prometheus_multiproc_dir
    registry = REGISTRY if directory is None else workers_registry(directory)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
