"""The FastAPI application: middleware, error answers, routes, and the lifespan that opens the
database pool, Redis and the graphs once per process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph.store.sqlite.aio import AsyncSqliteStore
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Match

from agent_service.api import assistants, crons, gdpr, runs, store, system, threads
from agent_service.api.deps import Services
from agent_service.api.errors import ERROR_RESPONSES, ApiError, error_response, run_error
from agent_service.auth.access import AccessPolicy, Forbidden
from agent_service.auth.api_keys import ApiKeyAuthenticator
from agent_service.core.ratelimit import RateLimiter
from agent_service.core.redis_clients import async_redis, sync_redis
from agent_service.crons.scheduler import CronScheduler
from agent_service.crons.submit import QueueSubmitter
from agent_service.graphs.assistants import AssistantCatalog
from agent_service.graphs.source import GraphSource, registry_graph_source
from agent_service.persistence.backends import open_persistence
from agent_service.persistence.errors import NOT_MIGRATED, UNAVAILABLE, describe_unavailable
from agent_service.persistence.migrations import migrate_sqlite
from agent_service.persistence.node_cache import NodeCache
from agent_service.persistence.pool import Pool, publish_pool_stats
from agent_service.runs.engine import initialise_run_series
from agent_service.runs.errors import RunError
from agent_service.runs.queue import RunQueue
from agent_service.runs.tracker import RunTracker
from agent_service.server.middleware import (
    AuthMiddleware,
    BodyLimitMiddleware,
    DatabaseGuardMiddleware,
    RequestLogMiddleware,
    UrlLimitMiddleware,
)
from agent_service.server.tracing import configure_langsmith, configure_tracing
from agent_service.settings import Settings

log = structlog.get_logger(__name__)

FINAL_DRAIN_SECONDS = 5.0
# How stale a worker's pool gauges may get: a scrape refreshes only the worker it reaches.
POOL_STATS_SECONDS = 5.0
# Routes that need the database (the others answer from memory).
DATABASE_PATHS = ("/threads", "/runs", "/invoke", "/users")

GraphSourceFactory = Callable[[Settings], GraphSource]

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_error",
    429: "rate_limited",
}


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)] or ["body"]
    return ".".join(parts)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Name every field and what is wrong with it; never echo the input (it may hold PII).
    errors = [
        {"field": _field_name(error.get("loc", ())), "message": str(error.get("msg", ""))}
        for error in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return error_response(422, "validation_error", f"invalid request: {detail}", errors=errors)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette's 405 names only the first
    route that matched the path, e.g. GET of GET and DELETE /threads/{id})."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return error_response(
        exc.status_code,
        _STATUS_CODES.get(exc.status_code, "http_error"),
        str(exc.detail),
        headers=headers,
    )


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _run_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RunError)
    return run_error(exc).response()


async def _forbidden(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(403, "forbidden", str(exc))


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    if request.app.state.services.database_circuit.trip():
        log.warning("database unavailable", reason=type(exc).__name__)
    return error_response(
        503, "database_unavailable", describe_unavailable(exc), headers={"retry-after": "5"}
    )


async def _internal(_request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, psycopg.Error):
        # A database error's text and context quote the statement's values (request data):
        # the log keeps its kind and SQLSTATE only.
        log.error("unhandled database error", error=type(exc).__name__, sqlstate=exc.sqlstate)
    else:
        log.error("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "internal server error; see the service log")


# Every error answer, by exception type (Starlette picks the nearest class in the MRO).
_EXCEPTION_HANDLERS: dict[
    type[Exception], Callable[[Request, Exception], Awaitable[JSONResponse]]
] = {
    RequestValidationError: _validation_error,
    HTTPException: _http_error,
    ApiError: _api_error,
    RunError: _run_error,
    Forbidden: _forbidden,
    **dict.fromkeys((*UNAVAILABLE, *NOT_MIGRATED), _unavailable),
    Exception: _internal,
}


async def _publish_pool_stats_forever(pool: Pool) -> None:
    while True:
        publish_pool_stats(pool)
        await asyncio.sleep(POOL_STATS_SECONDS)


def create_app(
    settings: Settings, *, graph_source: GraphSourceFactory = registry_graph_source
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_tracing(settings)
        app.state.langsmith = configure_langsmith(settings)
        async with AsyncExitStack() as stack:
            persistence = await stack.enter_async_context(open_persistence(settings))
            if persistence.backend == "sqlite":
                # The embedded file belongs to this pod alone: no Job can migrate it first.
                await migrate_sqlite(persistence)
            store = persistence.store
            if isinstance(store, AsyncPostgresStore | AsyncSqliteStore):
                await store.start_ttl_sweeper()
                stack.push_async_callback(store.stop_ttl_sweeper)
            redis_client = async_redis(settings)
            if redis_client is not None:
                stack.push_async_callback(redis_client.aclose)
            cache_client = sync_redis(settings)
            if cache_client is not None:
                stack.callback(cache_client.close)
            cache = NodeCache(cache_client)
            source = graph_source(settings)
            graphs = source.build(
                checkpointer=persistence.checkpointer,
                store=persistence.store,
                cache=cache,
                model=source.model,
            )
            access = AccessPolicy(
                settings.principal_roles,
                settings.principal_graphs,
                admins=settings.admin_principal_set,
                approval_graphs=source.approval_graphs,
            )
            unknown = access.unknown_graphs(graphs.keys())
            if unknown:
                raise ValueError(f"PRINCIPAL_GRAPHS names graphs this service lacks: {unknown}")
            catalog = AssistantCatalog(graphs.keys(), stored=persistence.tables)
            auth = ApiKeyAuthenticator(settings.api_keys)
            if not auth.configured:
                log.warning("no API keys configured (API_KEYS): every API request answers 401")
            tracker = RunTracker()
            queue = RunQueue(
                settings=settings,
                persistence=persistence,
                graphs=graphs,
                catalog=catalog,
                access=access,
                tracker=tracker,
                redis=redis_client,
            )
            services = Services(
                settings=settings,
                persistence=persistence,
                graphs=graphs,
                catalog=catalog,
                auth=auth,
                limiter=RateLimiter(settings.rate_limit_per_minute, redis_client),
                auth_failures=RateLimiter(settings.auth_failures_per_minute, redis_client),
                cache=cache,
                redis=redis_client,
                model_description=source.model_description,
                access=access,
                runs=tracker,
                queue=queue,
            )
            app.state.services = services
            initialise_run_series(graphs.keys())
            if persistence.pool is not None:
                publisher = asyncio.create_task(_publish_pool_stats_forever(persistence.pool))

                async def stop_publisher() -> None:
                    publisher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await publisher

                stack.push_async_callback(stop_publisher)
            scheduler: CronScheduler | None = None
            if settings.cron_scheduler:
                scheduler = CronScheduler(
                    persistence.crons,
                    QueueSubmitter(queue),
                    access,
                    poll_seconds=settings.cron_poll_seconds,
                )
                scheduler.start()
                stack.push_async_callback(scheduler.stop)
            log.info(
                "service started",
                persistence=persistence.backend,
                cache=cache.backend,
                model=source.model_description,
                graphs=sorted(graphs),
                principals=len(auth.principals),
            )
            queue.start(settings.run_workers)
            # What start-up built (modules, compiled graphs, schemas, the pool) lives as long
            # as the process; left in the collector's oldest generation, every full collection
            # walked it again: about 110 ms with the event loop stopped, a dozen times in 15 s
            # under load (gc.callbacks probe), the service's p99. Frozen, a full collection
            # walks only what requests created (https://docs.python.org/3/library/gc.html#gc.freeze).
            gc.collect()
            gc.freeze()
            try:
                yield
            finally:
                # Collectable again once the app is done (tests start many in one process).
                gc.unfreeze()
                if scheduler is not None:
                    # Before the drain: no firing may start a run the drain does not wait for.
                    await scheduler.stop()
                await queue.stop()
                # uvicorn has already waited SHUTDOWN_GRACE_SECONDS for open requests; what is
                # left are runs whose client went away. Give them a moment, then cancel: each
                # keeps its last checkpoint and can be resumed.
                cancelled = await services.runs.drain(
                    min(settings.shutdown_grace_seconds, FINAL_DRAIN_SECONDS)
                )
                log.info("service stopping", runs_cancelled=cancelled)

    open_paths = {"/health", "/ready"}
    if not settings.metrics_require_auth:
        open_paths.add("/metrics")
    # crons before runs: /runs/crons/... must not be read as a run route's path parameter.
    routers = (system, assistants, threads, crons, runs, store, gdpr)
    route_patterns = tuple(
        (route.path_regex, route.path)
        for module in routers
        for route in module.router.routes
        if isinstance(route, APIRoute)
    )
    middleware = [
        Middleware(RequestLogMiddleware, routes=route_patterns),
        Middleware(UrlLimitMiddleware, max_url_chars=settings.max_url_chars),
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "DELETE", "PATCH", "OPTIONS"],
            allow_headers=["content-type", "x-api-key", "x-request-id", "last-event-id"],
            expose_headers=["content-location", "x-request-id", "retry-after"],
        ),
        Middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes),
        Middleware(AuthMiddleware, open_paths=frozenset(open_paths)),
        Middleware(DatabaseGuardMiddleware, guarded_prefixes=DATABASE_PATHS),
    ]
    app = FastAPI(
        title="agent-service",
        version="1",
        lifespan=lifespan,
        middleware=middleware,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    for exc_type, handler in _EXCEPTION_HANDLERS.items():
        app.add_exception_handler(exc_type, handler)
    for module in routers:
        app.include_router(module.router, responses=ERROR_RESPONSES)
    return app
