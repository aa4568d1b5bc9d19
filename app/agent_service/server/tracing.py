"""Tracing, off unless configured: OpenTelemetry spans for HTTP requests and graph runs
(exported over OTLP/gRPC when OTEL_EXPORTER_OTLP_ENDPOINT is set), and LangSmith's own tracing
of the graphs when a LangSmith key is configured.

The spans are made with the OpenTelemetry API everywhere (the request middleware, the run
engine); without a configured provider the API's tracer is a no-op, so nothing is recorded or
sent. https://opentelemetry.io/docs/languages/python/instrumentation/
"""

from __future__ import annotations

import os

import structlog
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


def configure_langsmith(settings: Settings) -> bool:
    """LangChain traces to LangSmith when LANGSMITH_TRACING and LANGSMITH_API_KEY are in the
    environment (https://docs.smith.langchain.com/observability): the key arrives as a secret
    file, so it is passed on here; returns whether LangSmith tracing is on."""
    if settings.langsmith_api_key is None:
        return False
    os.environ["LANGSMITH_API_KEY"] = settings.langsmith_api_key.get_secret_value()
    os.environ.setdefault("LANGSMITH_TRACING", "true")
    return True
