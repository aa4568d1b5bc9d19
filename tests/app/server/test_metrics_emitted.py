"""Every metric app/agent_service/metrics.py declares is emitted: real runs (success,
interrupted, error, timeout), rejections, cache hits and misses and pool use, read back through
/metrics with the values they must have; and the same with two uvicorn workers.

The in-thread service shares this process's registry with other tests, so values are compared
as before/after differences."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_service import metrics as declared
from agent_service.graphs.source import GraphSource, registry_graph_source
from agent_service.settings import Settings
from langgraph.graph import END, START, MessagesState, StateGraph
from prometheus_client.metrics import MetricWrapperBase

from tests.app.server.conftest import fresh_database, make_settings
from tests.app.server.graphs import GRAPH_ID, build_test_graphs, say
from tests.app.server.scrape import delta, scrape, series, value
from tests.app.server.service import (
    KEYS,
    Service,
    api_keys_json,
    serve_in_process,
    serve_in_thread,
    service_env,
    wait_until_ready,
)
from tools.kit.ports import free_port
from tools.kit.servers import PostgresServer

pytestmark = pytest.mark.integration

BOOM = "boom_agent"
RATE_LIMIT = 40
POOL_MAX = 4
TIMEOUT_SECONDS = 2


async def _boom(state: MessagesState) -> dict[str, Any]:
    raise RuntimeError("the graph fails on purpose")


def _graphs_with_a_failing_one(settings: Settings) -> GraphSource:
    """The production graphs (the research agent's node cache), the tests' echo graph
    (delays, interrupts) and a graph whose only node raises."""
    production = registry_graph_source(settings)

    def build(**kwargs: Any) -> Any:
        builder = StateGraph(MessagesState)
        builder.add_node("boom", _boom)
        builder.add_edge(START, "boom")
        builder.add_edge("boom", END)
        failing = builder.compile(checkpointer=kwargs["checkpointer"], store=kwargs["store"])
        return {
            **production.build(**kwargs),
            **build_test_graphs(**kwargs),
            BOOM: failing,
        }

    return GraphSource(build=build, model=production.model, model_description="test")


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[Service]:
    settings = make_settings(
        tmp_path_factory.mktemp("metrics"),
        database_url=fresh_database(postgres_server),
        database_pool_min=2,
        database_pool_max=POOL_MAX,
        rate_limit_per_minute=RATE_LIMIT,
        request_timeout_seconds=TIMEOUT_SECONDS,
    )
    with serve_in_thread(settings, graph_source=_graphs_with_a_failing_one) as running:
        yield running


def _wait(service: Service, thread_id: str, graph: str, **body: Any) -> httpx.Response:
    with service.http("alice") as http:
        return http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": graph, **body})


def _thread(service: Service) -> str:
    with service.http("alice") as http:
        return str(http.post("/threads", json={}).json()["thread_id"])


def test_run_outcomes_durations_and_http_series(service: Service) -> None:
    before = scrape(service.url)
    assert _wait(service, _thread(service), GRAPH_ID, input=say("hi")).status_code == 200
    assert _wait(service, _thread(service), GRAPH_ID, input=say("approve this")).status_code == 200
    failed = _wait(service, _thread(service), BOOM, input=say("hi"))
    timed_out = _wait(
        service,
        _thread(service),
        GRAPH_ID,
        input=say("slow"),
        config={"configurable": {"delay": TIMEOUT_SECONDS * 3}},
    )
    after = scrape(service.url)

    runs = "agent_service_graph_executions_total"
    assert delta(before, after, runs, graph=GRAPH_ID, status="success") == 1
    assert delta(before, after, runs, graph=GRAPH_ID, status="interrupted") == 1
    assert delta(before, after, runs, graph=BOOM, status="error") == 1, failed.text
    assert delta(before, after, runs, graph=GRAPH_ID, status="timeout") == 1, timed_out.text
    duration = "agent_service_run_duration_seconds"
    assert delta(before, after, f"{duration}_count", graph=GRAPH_ID) == 3
    assert delta(before, after, f"{duration}_count", graph=BOOM) == 1
    # The timed-out run lasted its timeout: it lands above the 1 s bucket, within +Inf.
    assert delta(before, after, f"{duration}_sum", graph=GRAPH_ID) >= TIMEOUT_SECONDS
    assert delta(before, after, f"{duration}_bucket", graph=GRAPH_ID, le="1.0") == 2
    assert delta(before, after, f"{duration}_bucket", graph=GRAPH_ID, le="+Inf") == 3

    http = "agent_service_http_requests_total"
    route = "/threads/{thread_id}/runs/wait"
    # Four runs, answered 200 (success, interrupt, error per the LangGraph convention or not:
    # whatever the code, the route template is the label, never the thread id).
    answered = {str(r.status_code) for r in (failed, timed_out)} | {"200"}
    counted = [delta(before, after, http, method="POST", route=route, code=c) for c in answered]
    assert sum(counted) == 4
    assert delta(before, after, http, method="POST", route="/threads", code="200") == 4
    assert delta(
        before, after, "agent_service_http_request_duration_seconds_count",
        method="POST", route=route,
    ) == 4  # fmt: skip
    # Templates only: no id (every id here is a UUID with digits) ever becomes a label value.
    routes = {labels["route"] for labels in series(after, http)}
    assert routes
    assert all(re.fullmatch(r"[a-z/_{}]+", route) for route in routes), routes


def test_active_runs_counts_a_run_while_it_runs(service: Service) -> None:
    thread_id = _thread(service)
    gauge = "agent_service_active_runs"
    assert value(scrape(service.url), gauge, graph=GRAPH_ID) == 0
    worker = threading.Thread(
        target=_wait,
        args=(service, thread_id, GRAPH_ID),
        kwargs={"input": say("slow"), "config": {"configurable": {"delay": 1.5}}},
    )
    worker.start()
    seen = 0.0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and seen == 0:
        seen = value(scrape(service.url), gauge, graph=GRAPH_ID)
        time.sleep(0.05)
    worker.join(30)
    assert seen == 1
    assert value(scrape(service.url), gauge, graph=GRAPH_ID) == 0


def test_rate_limit_rejections_are_counted(service: Service) -> None:
    before = scrape(service.url)
    with service.http("bob") as http:
        codes = [http.get("/info").status_code for _ in range(RATE_LIMIT + 3)]
    after = scrape(service.url)
    rejected = codes.count(429)
    assert rejected >= 3
    assert delta(before, after, "agent_service_rate_limit_rejections_total", backend="memory") == (
        rejected
    )
    # Answered before routing, still labelled by the route template.
    answered_429 = delta(
        before, after, "agent_service_http_requests_total", method="GET", route="/info", code="429"
    )
    assert answered_429 == rejected


def test_node_cache_hits_and_misses(service: Service) -> None:
    question = {"question": f"volcanoes, tides and comets {time.time_ns()}"}

    async def research() -> None:
        client = service.client("alice")
        await client.runs.wait(None, "research_agent", input=question)

    before = scrape(service.url)
    asyncio.run(research())
    middle = scrape(service.url)
    asyncio.run(research())
    after = scrape(service.url)
    hits, misses = "agent_service_node_cache_hits_total", "agent_service_node_cache_misses_total"
    first_misses = delta(before, middle, misses, node="research_topic")
    # The first run looks every topic up and finds nothing; the second finds every one.
    assert first_misses >= 3
    assert delta(before, middle, hits, node="research_topic") == 0
    assert delta(middle, after, hits, node="research_topic") == first_misses
    assert delta(middle, after, misses, node="research_topic") == 0
    assert delta(before, middle, "agent_service_research_tasks_total", status="success") == 3


def test_pool_gauges_follow_the_pool(service: Service) -> None:
    samples = scrape(service.url)
    assert value(samples, "agent_service_db_pool_max") == POOL_MAX
    size = value(samples, "agent_service_db_pool_size")
    assert 2 <= size <= POOL_MAX  # the pool's min_size is held open
    assert 0 <= value(samples, "agent_service_db_pool_available") <= size
    assert value(samples, "agent_service_db_pool_requests_waiting") == 0


def test_every_declared_metric_is_on_metrics_after_traffic(service: Service) -> None:
    """Run after the tests above (file order): the model, guardrail and research series come
    from the production graphs' runs there."""
    asyncio.run(_main_agent_turn(service))
    names = {name for name, _ in scrape(service.url)}
    for metric in vars(declared).values():
        if isinstance(metric, MetricWrapperBase):
            base = metric._name
            emitted = {base, f"{base}_total", f"{base}_count"} & names
            assert emitted, f"{base} is declared but never emitted"


async def _main_agent_turn(service: Service) -> None:
    client = service.client("alice")
    thread = await client.threads.create()
    await client.runs.wait(
        thread["thread_id"], "main_agent", input=say("mail me at jane@example.com")
    )


def test_two_workers_sum_their_samples(tmp_path: Path, postgres_server: PostgresServer) -> None:
    env = service_env(
        database_url=fresh_database(postgres_server),
        api_keys=api_keys_json(),
        workers=2,
        database_pool_min=1,
        database_pool_max=3,
        prometheus_multiproc_dir=tmp_path / "prometheus",
        # As in the chart: /metrics on a port of its own, served by the uvicorn parent.
        metrics_port=(metrics_port := free_port()),
    )
    metrics_url = f"http://127.0.0.1:{metrics_port}"
    runs = 8
    with serve_in_process(env, tmp_path / "service.log") as process:
        wait_until_ready(process.url)
        # Not on the API port, which the Ingress routes.
        assert httpx.get(f"{process.url}/metrics").status_code == 404
        headers = {"X-API-Key": KEYS["alice"]}
        for index in range(runs):
            # A fresh connection each time, so the runs spread over both workers.
            with httpx.Client(headers=headers, timeout=60) as fresh:
                thread = fresh.post(f"{process.url}/threads", json={}).json()["thread_id"]
            with httpx.Client(headers=headers, timeout=60) as fresh:
                response = fresh.post(
                    f"{process.url}/threads/{thread}/runs/wait",
                    json={"assistant_id": GRAPH_ID, "input": say(f"m{index}")},
                )
            assert response.status_code == 200, process.log()
        # Both workers refresh their pool gauges every few seconds; wait for both files.
        deadline = time.monotonic() + 15
        samples = scrape(metrics_url)
        while time.monotonic() < deadline and value(samples, "agent_service_db_pool_max") < 6:
            time.sleep(0.5)
            samples = scrape(metrics_url)
        process.terminate()
    succeeded = value(
        samples, "agent_service_graph_executions_total", graph=GRAPH_ID, status="success"
    )
    assert succeeded == runs
    assert value(samples, "agent_service_run_duration_seconds_count", graph=GRAPH_ID) == runs
    # livesum: the two workers' gauges add up (3 + 3), and no run is left counted as active.
    assert value(samples, "agent_service_db_pool_max") == 6
    assert value(samples, "agent_service_active_runs", graph=GRAPH_ID) == 0
    route = "/threads/{thread_id}/runs/wait"
    answered = value(
        samples, "agent_service_http_requests_total", method="POST", route=route, code="200"
    )
    assert answered == runs
