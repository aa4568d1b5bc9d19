"""uvicorn on HOST:PORT with WORKERS processes, each building the app from the environment
(`agent-service serve` and the benchmarks start it here).

SIGTERM: uvicorn stops accepting, lets open requests (and so their runs) finish for
SHUTDOWN_GRACE_SECONDS, then the lifespan cancels what is left (runs keep their last
checkpoint) and closes the pool.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from agent_service.server.logging_setup import configure_logging
from agent_service.settings import Settings, load_settings

# Each worker builds its own app (so WORKERS > 1 works).
APP_FACTORY = "agent_service.server.serve:build_app"
DEFAULT_MULTIPROC_DIR = "/tmp/agent-service/prometheus"  # noqa: S108 - emptyDir in the pod


def build_app() -> FastAPI:
    """The app for one uvicorn worker (an import-string factory, so WORKERS > 1 works)."""
    from agent_service.server.app import create_app

    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def _prepare_multiprocess_metrics(settings: Settings) -> Path | None:
    # prometheus-client must see the directory before any metric is created, in every
    # worker: set it here, in the parent, before uvicorn starts them.
    if settings.workers <= 1 and settings.prometheus_multiproc_dir is None:
        return None
    directory = settings.prometheus_multiproc_dir or Path(DEFAULT_MULTIPROC_DIR)
    # prometheus-client reads the directory from this variable, in the workers too.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    # Samples of a previous container's processes would be summed into ours.
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def serve_metrics(settings: Settings, directory: Path | None) -> None:
    """/metrics on METRICS_PORT, from this (the parent) process: a port of its own, which the
    chart's Service exposes to Prometheus and its Ingress never routes. With several workers it
    merges their samples (prometheus-client's multiprocess mode); with one, uvicorn runs the
    app in this process and the default registry is the app's."""
    if not settings.metrics_port:
        return
    from prometheus_client import REGISTRY, start_http_server

    from agent_service.metrics import workers_registry

    registry = REGISTRY if directory is None else workers_registry(directory)
    start_http_server(settings.metrics_port, addr=settings.host, registry=registry)


def run_uvicorn(settings: Settings, app_factory: str) -> None:
    """Serve `app_factory` ("module:function" returning the app, called in each worker)."""
    # The metrics directory first: the logs' PII filter imports the metrics module, whose
    # multiprocess values open their files in that directory at import time.
    directory = _prepare_multiprocess_metrics(settings)
    configure_logging(settings.log_level)
    serve_metrics(settings, directory)
    uvicorn.run(
        app_factory,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=True,
        lifespan="on",
    )
