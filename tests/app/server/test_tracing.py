"""Tracing is off by default and, once configured, records a span per HTTP request (named by
route template) with the graph run's span as its child; LangSmith follows its key."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from agent_service.server.tracing import configure_langsmith, configure_tracing
from agent_service.settings import Settings
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext
from pydantic import SecretStr

from tests.app.server.conftest import make_settings
from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.service import KEYS, serve_in_thread

pytestmark = pytest.mark.integration


def test_tracing_and_langsmith_are_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGSMITH_API_KEY", "placeholder")
    monkeypatch.delenv("LANGSMITH_API_KEY")
    settings = Settings()
    assert configure_tracing(settings) is False
    assert configure_langsmith(settings) is False
    assert "LANGSMITH_API_KEY" not in os.environ


def test_a_langsmith_key_turns_langsmith_tracing_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # Set, then removed: monkeypatch remembers the original state and restores it after the
    # test, so no later test traces to LangSmith (no traffic leaves loopback).
    for name in ("LANGSMITH_TRACING", "LANGSMITH_API_KEY"):
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)
    assert configure_langsmith(Settings(langsmith_api_key=SecretStr("lsv2-test-key"))) is True
    assert os.environ["LANGSMITH_API_KEY"] == "lsv2-test-key"
    assert os.environ["LANGSMITH_TRACING"] == "true"


def test_requests_and_runs_are_traced_once_configured(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    settings = make_settings(tmp_path)
    assert configure_tracing(settings, exporter=exporter) is True
    with serve_in_thread(settings) as service:
        headers = {"X-API-Key": KEYS["alice"]}
        with httpx.Client(base_url=service.url, headers=headers, timeout=30) as http:
            thread = http.post("/threads", json={}).json()["thread_id"]
            answer = http.post(
                f"/threads/{thread}/runs/wait", json={"assistant_id": GRAPH_ID, "input": say("hi")}
            )
            assert answer.status_code == 200
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    provider.force_flush()  # type: ignore[attr-defined]
    finished = exporter.get_finished_spans()
    spans: dict[str, ReadableSpan] = {s.name: s for s in finished}
    by_id = {s.context.span_id: s for s in finished if s.context is not None}
    request = spans["POST /threads/{thread_id}/runs/wait"]
    run = spans[f"run {GRAPH_ID}"]
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == 200
    assert run.attributes is not None
    assert run.attributes["agent.outcome"] == "success"
    assert run.parent is not None
    assert request.context is not None
    # The run's span descends from the request's (libraries may add spans in between).
    ancestors: list[int] = []
    parent: SpanContext | None = run.parent
    while parent is not None and parent.span_id in by_id:
        ancestors.append(parent.span_id)
        parent = by_id[parent.span_id].parent
    assert request.context.span_id in ancestors, [s.name for s in finished]
    assert thread not in "".join(spans)  # route templates, never ids, name the spans
