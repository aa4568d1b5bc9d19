"""`python -m benchmarks.launcher`: the service exactly as `agent-service serve` runs it, with
the one-node graph added next to the registry's."""

from __future__ import annotations

from agent_service.server.app import create_app
from agent_service.server.logging_setup import configure_logging
from agent_service.server.serve import run_uvicorn
from agent_service.settings import load_settings
from fastapi import FastAPI

from benchmarks.graphs import bench_graph_source


def build_app() -> FastAPI:
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings, graph_source=bench_graph_source)


if __name__ == "__main__":
    run_uvicorn(load_settings(), "benchmarks.launcher:build_app")
