"""Tracing, off unless configured: OpenTelemetry spans for HTTP requests and graph runs
(exported over OTLP/gRPC when OTEL_EXPORTER_OTLP_ENDPOINT is set), and LangSmith's own tracing
of the graphs when a LangSmith key is configured.

The spans are made with the OpenTelemetry API everywhere (the request middleware, the run
engine); without a configured provider the API's tracer is a no-op, so nothing is recorded or
sent. https://opentelemetry.io/docs/languages/python/instrumentation/
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Awaitable, Callable
from typing import Any

import langsmith
import structlog
from langsmith import utils as ls_utils
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

import agent_service
from agent_service.settings import Settings

log = structlog.get_logger(__name__)

SERVICE_NAME = "agent-service"


def configure_tracing(settings: Settings, exporter: SpanExporter | None = None) -> bool:
    """Install the process's tracer provider when tracing is configured (or an exporter is
    given, for tests); returns whether spans are now exported."""
    if exporter is None:
        if settings.otel_exporter_otlp_endpoint is None:
            return False
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.otel_exporter_otlp_endpoint)
    resource = Resource.create(
        {"service.name": SERVICE_NAME, "service.version": agent_service.__version__}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing to OTLP", endpoint=settings.otel_exporter_otlp_endpoint)
    return True


async def _in_thread_only_when_tracing(
    default: Callable[..., Awaitable[Any]],
    ctx: contextvars.Context,
    func: Callable[..., Any],
    /,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """LangSmith's `aio_to_thread`, run inline while nothing is traced.

    LangChain's `create_agent` wraps every middleware's `awrap_model_call` in LangSmith's
    `traceable`, whose async wrapper sets up and closes its run in the default thread pool,
    traced or not: two thread hops per middleware per model call. py-spy found them the
    largest cost no request needs; with the offline model's own hop they were about a fifth
    of a loaded service's CPU per request (docs/benchmarks.md). Untraced, those calls only
    read context variables, so they run here, inside `ctx` as the override contract asks
    (`langsmith.set_runtime_overrides`, langsmith/_runtime_overrides.py); traced, LangSmith's
    own thread pool still runs them."""
    if ctx.run(ls_utils.tracing_is_enabled):
        return await default(ctx, func, *args, **kwargs)
    return ctx.run(func, *args, **kwargs)


def configure_langsmith(settings: Settings) -> bool:
    """LangChain traces to LangSmith when LANGSMITH_TRACING and LANGSMITH_API_KEY are in the
    environment (https://docs.smith.langchain.com/observability): the key arrives as a secret
    file, so it is passed on here; returns whether LangSmith tracing is on."""
    langsmith.set_runtime_overrides(aio_to_thread=_in_thread_only_when_tracing)
    if settings.langsmith_api_key is None:
        return False
    os.environ["LANGSMITH_API_KEY"] = settings.langsmith_api_key.get_secret_value()
    os.environ.setdefault("LANGSMITH_TRACING", "true")
    return True
