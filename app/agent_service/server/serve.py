"""`agent-service serve`: uvicorn on HOST:PORT with WORKERS processes.

SIGTERM: uvicorn stops accepting, lets open requests (and so their runs) finish for
SHUTDOWN_GRACE_SECONDS, then the lifespan cancels what is left (runs keep their last
checkpoint) and closes the pool.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from agent_service.server.logging_setup import configure_logging
from agent_service.settings import Settings, load_settings

DEFAULT_MULTIPROC_DIR = "/tmp/agent-service/prometheus"  # noqa: S108 - emptyDir in the pod


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (default: HOST or 0.0.0.0)")
    parser.add_argument("--port", type=int, help="listen port (default: PORT or 8000)")
    parser.add_argument("--workers", type=int, help="worker processes (default: WORKERS or 1)")
    parser.epilog = (
        "Settings come from the environment and SECRETS_DIR (docs/service-interface.md). "
        "With no DATABASE_URL the service runs on the embedded SQLite file at SQLITE_PATH."
    )


def build_app() -> FastAPI:
    """The app for one uvicorn worker (an import-string factory, so WORKERS > 1 works)."""
    from agent_service.server.app import create_app

    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def _prepare_multiprocess_metrics(settings: Settings) -> None:
    # prometheus-client must see the directory before any metric is created, in every
    # worker: set it here, in the parent, before uvicorn starts them.
    if settings.workers <= 1 and settings.prometheus_multiproc_dir is None:
        return
    directory = settings.prometheus_multiproc_dir or Path(DEFAULT_MULTIPROC_DIR)
    # prometheus-client reads the directory from this variable, in the workers too.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    # Samples of a previous container's processes would be summed into ours.
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)


def _settings_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    name = ".".join(str(part) for part in first["loc"]).upper() or "settings"
    return f"serve: invalid setting {name}: {first['msg']}"


def run(args: argparse.Namespace) -> int:
    overrides = {
        key: value
        for key, value in (("host", args.host), ("port", args.port), ("workers", args.workers))
        if value is not None
    }
    try:
        settings = load_settings()
        settings = settings.model_copy(update=overrides)
    except ValidationError as exc:
        print(_settings_error(exc), file=sys.stderr)
        return 2
    for key, value in overrides.items():
        # Workers re-read the environment: pass the command-line overrides on.
        os.environ[key.upper()] = str(value)
    run_uvicorn(settings, "agent_service.server.serve:build_app")
    return 0


def run_uvicorn(settings: Settings, app_factory: str) -> None:
    """Serve `app_factory` ("module:function" returning the app, called in each worker)."""
    # The metrics directory first: the logs' PII filter imports the metrics module, whose
    # multiprocess values open their files in that directory at import time.
    _prepare_multiprocess_metrics(settings)
    configure_logging(settings.log_level)
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
