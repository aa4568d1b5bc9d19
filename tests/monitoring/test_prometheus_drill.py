"""The monitoring drill: a real Prometheus (Debian's package) on loopback scrapes a real service
(two uvicorn workers on PostgreSQL) and evaluates the PrometheusRule the chart renders; faults
are injected and Prometheus is asked what Flagger and Alertmanager would see.

1. Healthy runs, a few slow ones, then a graph that errors: the rendered
   `AgentServiceHighErrorRate` fires, and the rendered MetricTemplate queries (Flagger's
   `{{ namespace }}`, `{{ target }}`, `{{ interval }}` filled in) return the canary pods' run
   error ratio and P99 run duration.
2. PostgreSQL stopped: runs answer 503, /ready fails, the pool empties, all visible in the
   service's own series.

The target is labelled like a canary pod (`<fullname>-<replicaset>-<pod>`, the labels the
Prometheus Operator's ServiceMonitor adds) so that the queries select it as they would in the
cluster. The only change to the rendered rules is `for:` (5 to 10 minutes in the chart),
shortened to FOR_SECONDS so the drill takes seconds; every expression is the rendered text.
Adds about 40 s to the suite (PostgreSQL, two workers, Prometheus, 20 s of drill).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.app.server.conftest import fresh_database
from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.scrape import scrape, value
from tests.app.server.service import KEYS, api_keys_json, serve_in_process, service_env
from tests.chart.prometheus_rules import flagger_query, metric_template_queries, rule_groups
from tests.chart.support import FULLNAME, NAMESPACE, Rendered, render_env
from tests.monitoring.conftest import SUMMARY
from tests.monitoring.graphs import FAILING_GRAPH
from tools.kit.ports import free_port
from tools.kit.process import started, wait_until_ready
from tools.kit.programs import require_program
from tools.kit.servers import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.helm]

CANARY_POD = f"{FULLNAME}-7d9f8c6b5-x2k4q"
FOR_SECONDS = 3
SCRAPE = "1s"
DRILL_LAUNCHER = ["-m", "tools.kit.launcher", "tests.monitoring.graphs:drill_graph_source"]
# Flagger's analysis window (canary.metrics.interval in the chart's values).
ANALYSIS_INTERVAL = "1m"
HEALTHY_RUNS, SLOW_RUNS, FAILED_RUNS = 24, 3, 6
SLOW_SECONDS = 1.2


@pytest.fixture(scope="module")
def rendered() -> Rendered:
    return render_env("canary")


def _drill_rules(rendered: Rendered, path: Path) -> None:
    groups = rule_groups(rendered)
    for group in groups:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{FOR_SECONDS}s"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))


def _prometheus_config(service_port: int, rules: Path) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": SCRAPE, "evaluation_interval": SCRAPE},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": "agent-service",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{service_port}"],
                        # What the ServiceMonitor's relabelling gives each pod's samples.
                        "labels": {"namespace": NAMESPACE, "pod": CANARY_POD},
                    }
                ],
            }
        ],
    }


@pytest.fixture
def prometheus_and_service(
    tmp_path: Path, postgres_server_own: PostgresServer, rendered: Rendered
) -> Iterator[tuple[str, str, int, PostgresServer]]:
    env = service_env(
        database_url=fresh_database(postgres_server_own),
        api_keys=api_keys_json(),
        workers=2,
        prometheus_multiproc_dir=tmp_path / "multiproc",
        database_pool_timeout_seconds=1,
        request_timeout_seconds=30,
        shutdown_grace_seconds=30,
        # As the chart runs it: /metrics only on its own port, which Prometheus scrapes.
        metrics_port=(metrics_port := free_port()),
    )
    with serve_in_process(env, tmp_path / "service.log", [sys.executable, *DRILL_LAUNCHER]) as svc:
        wait_until_ready(svc.url)
        rules = tmp_path / "rules.yaml"
        _drill_rules(rendered, rules)
        config = tmp_path / "prometheus.yml"
        config.write_text(yaml.safe_dump(_prometheus_config(metrics_port, rules)))
        port = free_port()
        command = [
            require_program("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        with started(
            "prometheus",
            command,
            {"PATH": "/usr/bin:/bin"},
            url=f"http://127.0.0.1:{port}",
            log=tmp_path / "prometheus.log",
            ready_path="/-/ready",
            stop_timeout=10,
        ) as prometheus:
            yield prometheus.url, svc.url, metrics_port, postgres_server_own


def _query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10)
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _scalar(prometheus: str, promql: str) -> float | None:
    result = _query(prometheus, promql)
    return float(result[0]["value"][1]) if result else None


def _wait_for(what: str, check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what}: not seen within {timeout} s")


def _firing(prometheus: str, alert: str) -> list[dict[str, Any]]:
    alerts = httpx.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == alert and a["state"] == "firing"]


def _run(service: str, graph: str, **body: Any) -> int:
    headers = {"X-API-Key": KEYS["alice"]}
    with httpx.Client(base_url=service, headers=headers, timeout=60) as http:
        payload = {"assistant_id": graph, "input": say("drill"), **body}
        return http.post("/runs/wait", json=payload).status_code


def _service_counters(metrics: str) -> dict[str, float]:
    samples = scrape(metrics)
    runs = "agent_service_graph_executions_total"
    return {
        "success": value(samples, runs, graph=GRAPH_ID, status="success"),
        "error": value(samples, runs, graph=FAILING_GRAPH, status="error"),
    }


def test_alerts_fire_and_canary_queries_answer_under_injected_faults(
    prometheus_and_service: tuple[str, str, int, PostgresServer],
    rendered: Rendered,
    request: pytest.FixtureRequest,
) -> None:
    started_at = time.monotonic()
    prometheus, service, metrics_port, postgres = prometheus_and_service
    # The scrape works and carries the pod's labels.
    _wait_for("the first scrape", lambda: _scalar(prometheus, f'up{{pod="{CANARY_POD}"}} == 1'))

    # --- fault 1: a graph that errors, among healthy and slow runs -----------------------------
    for _ in range(HEALTHY_RUNS):
        assert _run(service, GRAPH_ID) == 200
    for _ in range(SLOW_RUNS):
        delay = {"configurable": {"delay": SLOW_SECONDS}}
        assert _run(service, GRAPH_ID, config=delay) == 200
    failed_codes = {_run(service, FAILING_GRAPH) for _ in range(FAILED_RUNS)}
    counters = _service_counters(f"http://127.0.0.1:{metrics_port}")
    assert counters == {"success": HEALTHY_RUNS + SLOW_RUNS, "error": FAILED_RUNS}

    alert = "AgentServiceHighErrorRate"
    firing = _wait_for(f"{alert} firing", lambda: _firing(prometheus, alert), timeout=40)
    assert firing[0]["labels"]["severity"] == "warning"

    variables = {"namespace": NAMESPACE, "target": FULLNAME, "interval": ANALYSIS_INTERVAL}
    queries = {
        name.removeprefix(f"{FULLNAME}-"): flagger_query(query, **variables)
        for name, query in metric_template_queries(rendered).items()
    }
    assert set(queries) == {"run-error-ratio", "run-duration-p99"}
    canary = rendered.one("Canary")["spec"]["analysis"]["metrics"]
    limits = {m["name"]: m["thresholdRange"]["max"] for m in canary if "templateRef" in m}
    error_ratio = _wait_for(
        "the run error ratio", lambda: _scalar(prometheus, queries["run-error-ratio"])
    )
    p99 = _wait_for(
        "the P99 run duration", lambda: _scalar(prometheus, queries["run-duration-p99"])
    )
    exact_ratio = 100 * FAILED_RUNS / (HEALTHY_RUNS + SLOW_RUNS + FAILED_RUNS)
    # rate() extrapolates each series over its own samples: close to the counters' ratio.
    assert exact_ratio / 2 < error_ratio < exact_ratio * 2
    assert error_ratio > limits["run-error-ratio"], "Flagger would fail this check"
    # 3 of 33 runs took 1.2 s: the P99 lies in the (1, 2.5] s bucket, under the 30 s limit.
    assert 1 < p99 <= 2.5
    assert p99 < limits["run-duration-p99"]
    # The primary's pods are not the canary's: the same queries for a primary-only target
    # would select nothing.
    primary_only = flagger_query(
        queries_template := metric_template_queries(rendered)[f"{FULLNAME}-run-error-ratio"],
        namespace=NAMESPACE,
        target=f"{FULLNAME}-primary",
        interval=ANALYSIS_INTERVAL,
    )
    assert "{{" in queries_template
    assert _query(prometheus, primary_only) == []

    # --- fault 2: PostgreSQL stopped ------------------------------------------------------------
    postgres.stop("immediate")
    codes = [_run(service, GRAPH_ID) for _ in range(5)]
    assert set(codes) == {503}, codes
    ready = httpx.get(f"{service}/ready", timeout=10)
    assert ready.status_code == 503
    unavailable = f'agent_service_http_requests_total{{pod="{CANARY_POD}", code="503"}}'
    answered_503 = _wait_for(
        "503s in Prometheus",
        lambda: _scalar(prometheus, f"sum({unavailable}) >= 5"),
    )
    five_xx_share = _wait_for(
        "the 5xx share",
        lambda: _scalar(
            prometheus,
            '100 * sum(rate(agent_service_http_requests_total{code=~"5.."}[1m]))'
            " / sum(rate(agent_service_http_requests_total[1m]))",
        ),
    )
    postgres.start()

    seconds = time.monotonic() - started_at
    summary = (
        f"monitoring drill: {alert} firing after {FAILED_RUNS}/"
        f"{HEALTHY_RUNS + SLOW_RUNS + FAILED_RUNS} runs failed (failed runs answered "
        f"{sorted(failed_codes)}); canary MetricTemplates: run-error-ratio={error_ratio:.1f}% "
        f"(max {limits['run-error-ratio']}, counters say {exact_ratio:.1f}%) "
        f"run-duration-p99={p99:.2f}s (max {limits['run-duration-p99']}); PostgreSQL stopped: "
        f"{int(answered_503)} runs answered 503, HTTP 5xx share {five_xx_share:.0f}% over 1m, "
        f"/ready 503 (database check ok={json.loads(ready.text)['checks']['database']['ok']}); "
        f"rules' for: shortened to {FOR_SECONDS}s; {seconds:.0f}s"
    )
    request.config.stash[SUMMARY].append(summary)
