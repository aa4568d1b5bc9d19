"""`agent-service serve`: the HTTP server (`server.serve`), with command-line overrides of
HOST, PORT and WORKERS."""

from __future__ import annotations

import argparse
import os
import sys

from agent_service.commands.common import InvalidSettings, command_settings
from agent_service.server.serve import APP_FACTORY, run_uvicorn


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (default: HOST or 0.0.0.0)")
    parser.add_argument("--port", type=int, help="listen port (default: PORT or 8000)")
    parser.add_argument("--workers", type=int, help="worker processes (default: WORKERS or 1)")
    parser.epilog = (
        "Settings come from the environment and SECRETS_DIR (docs/service-interface.md). "
        "With no DATABASE_URL the service runs on the embedded SQLite file at SQLITE_PATH."
    )


def run(args: argparse.Namespace) -> int:
    overrides = {
        key: value
        for key, value in (("host", args.host), ("port", args.port), ("workers", args.workers))
        if value is not None
    }
    try:
        settings = command_settings().model_copy(update=overrides)
    except InvalidSettings as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    for key, value in overrides.items():
        # Workers re-read the environment: pass the command-line overrides on.
        os.environ[key.upper()] = str(value)
    run_uvicorn(settings, APP_FACTORY)
    return 0
