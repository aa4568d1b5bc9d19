"""`python -m tools.kit.launcher <module:graph_source>`: the service exactly as `agent-service
serve` runs it (same uvicorn runner: workers, multiprocess metrics, graceful shutdown), with the
graphs of another graph source (the benchmark's one-node graph, the tests' echo graph)."""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

from agent_service.server.logging_setup import configure_logging
from agent_service.server.serve import run_uvicorn
from agent_service.settings import load_settings
from fastapi import FastAPI

if TYPE_CHECKING:
    from agent_service.server.app import GraphSourceFactory

# How the choice reaches uvicorn's workers, which import `build_app` afresh.
GRAPH_SOURCE_VARIABLE = "LAUNCHER_GRAPH_SOURCE"


def command(graph_source: str) -> list[str]:
    """The argv that serves `graph_source` ("module:function")."""
    return [sys.executable, "-m", "tools.kit.launcher", graph_source]


def _graph_source(spec: str) -> GraphSourceFactory:
    module, _, name = spec.partition(":")
    factory: GraphSourceFactory = getattr(importlib.import_module(module), name)
    return factory


def build_app() -> FastAPI:
    # Imported in the worker, as `agent-service serve` does: the app imports the metrics, which
    # open their multiprocess files at import, after run_uvicorn has made the directory.
    from agent_service.server.app import create_app

    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings, graph_source=_graph_source(os.environ[GRAPH_SOURCE_VARIABLE]))


def worker_command(graph_source: str) -> list[str]:
    """The argv of `agent-service worker` with the graphs of `graph_source`."""
    return [sys.executable, "-m", "tools.kit.launcher", "--worker", graph_source]


def main(argv: list[str]) -> None:
    if argv[:1] == ["--worker"] and len(argv) == 2:
        from agent_service.server.worker import run_worker

        settings = load_settings()
        run_worker(settings, _graph_source(argv[1]))
        return
    if len(argv) != 1 or ":" not in argv[0]:
        raise SystemExit("usage: python -m tools.kit.launcher [--worker] <module:graph_source>")
    _graph_source(argv[0])  # fails here, once, rather than in every worker
    os.environ[GRAPH_SOURCE_VARIABLE] = argv[0]
    run_uvicorn(load_settings(), "tools.kit.launcher:build_app")


if __name__ == "__main__":
    main(sys.argv[1:])
