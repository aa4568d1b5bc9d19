"""A process that only executes background runs: the app's lifespan (database, Redis, graphs,
the run queue's workers) with no HTTP API; its metrics on METRICS_PORT.

SIGTERM: the workers stop claiming; runs still executing get SHUTDOWN_GRACE_SECONDS (at most
the lifespan's final drain) to finish, and those cancelled go back to the queue, where another
worker continues them from their last checkpoint.
"""

from __future__ import annotations

import asyncio
import signal

import structlog

from agent_service.graphs.source import registry_graph_source
from agent_service.server.app import GraphSourceFactory, create_app
from agent_service.server.logging_setup import configure_logging
from agent_service.server.serve import serve_metrics
from agent_service.settings import Settings

log = structlog.get_logger(__name__)


async def work(settings: Settings, graph_source: GraphSourceFactory) -> None:
    app = create_app(settings, graph_source=graph_source)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with app.router.lifespan_context(app):
        log.info("worker ready", slots=settings.run_workers)
        await stop.wait()
        log.info("worker stopping")


def run_worker(
    settings: Settings, graph_source: GraphSourceFactory = registry_graph_source
) -> None:
    configure_logging(settings.log_level)
    serve_metrics(settings, None)
    asyncio.run(work(settings, graph_source))
