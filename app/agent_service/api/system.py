"""Probes, metrics and server information."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

import agent_service
from agent_service.api.deps import get_services
from agent_service.api.readiness import readiness
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
        "flags": {"assistants": True, "crons": False, "langsmith": False},
    }


_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w+_(\d+)\.db$")


def _forget_dead_workers(directory: Path) -> None:
    """A `live*` gauge must count live workers only, but nothing tells prometheus-client that
    uvicorn replaced a worker: drop the live-gauge files of processes that are gone (the
    library's `mark_process_dead`, which a gunicorn `child_exit` hook would call:
    https://prometheus.github.io/client_python/multiprocess/). Counters and histograms of a
    dead worker stay, so totals never go backwards."""
    pids = {
        int(match.group(1))
        for name in os.listdir(directory)
        if (match := _LIVE_GAUGE_FILE.match(name))
    }
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
        except PermissionError:
            continue  # alive, under another user


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
    if services.persistence.pool is not None:
        publish_pool_stats(services.persistence.pool)
    directory = services.settings.prometheus_multiproc_dir
    if directory is not None:
        _forget_dead_workers(directory)
        # Several uvicorn workers: merge every process's samples.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        payload = generate_latest(registry)
    else:
        payload = generate_latest(REGISTRY)
    return Response(payload, media_type=CONTENT_TYPE_LATEST)
