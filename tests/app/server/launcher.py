"""`python -m tests.app.server.launcher`: the service with the tests' echo graph, run by the
same uvicorn runner as `agent-service serve` (workers, multiprocess metrics, graceful
shutdown), for tests that restart or signal it."""

from __future__ import annotations

from agent_service.server.app import create_app
from agent_service.server.logging_setup import configure_logging
from agent_service.server.serve import run_uvicorn
from agent_service.settings import load_settings
from fastapi import FastAPI

from tests.app.server.graphs import echo_graph_source


def build_app() -> FastAPI:
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings, graph_source=echo_graph_source)


def main() -> None:
    run_uvicorn(load_settings(), "tests.app.server.launcher:build_app")


if __name__ == "__main__":
    main()
