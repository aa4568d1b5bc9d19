"""PodMonitor and PrometheusRule: the alerts parse as PromQL and query metrics that exist."""

from __future__ import annotations

from typing import Any

import promql_parser
import pytest
from agent_service import metrics as service_metrics
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from tests.chart.support import FULLNAME, NAMESPACE, RELEASE, Rendered, RenderError, render_env

pytestmark = pytest.mark.helm

# Metrics the alerts may use that other components export.
EXTERNAL_METRICS = {
    # kube-state-metrics
    "kube_pod_container_status_restarts_total",
    "kube_pod_status_ready",
    "kube_cronjob_status_last_successful_time",
    "kube_cronjob_created",
    "kube_job_status_failed",
    # Flagger
    "flagger_canary_status",
}
POD_MATCHERS = {("namespace", "=", NAMESPACE), ("pod", "=~", f"{FULLNAME}-.*")}


def _alerts(rendered: Rendered) -> dict[str, dict[str, Any]]:
    (group,) = rendered.one("PrometheusRule")["spec"]["groups"]
    return {rule["alert"]: rule for rule in group["rules"]}


def _exposed_sample_names() -> set[str]:
    """The series names app/agent_service/metrics.py puts on /metrics."""
    names: set[str] = set()
    for metric in vars(service_metrics).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        name: str = metric._name
        if isinstance(metric, Counter):
            names.add(f"{name}_total")
        elif isinstance(metric, Histogram):
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        elif isinstance(metric, Gauge):
            names.add(name)
    return names


def _selectors(expr: str) -> list[tuple[str, set[tuple[str, str, str]]]]:
    """(metric name, {(label, op, value)}) of every vector selector; raises on bad PromQL."""
    found: list[tuple[str, set[tuple[str, str, str]]]] = []
    ops = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = {
                (m.name, ops[str(m.op).rsplit(".", 1)[-1]], m.value) for m in node.matchers.matchers
            }
            found.append((node.name or "", matchers))
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def test_pod_monitor_scrapes_the_metrics_port_of_every_server_pod(autoscaled: Rendered) -> None:
    monitor = autoscaled.one("PodMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    assert spec["selector"] == {
        "matchLabels": {
            "app.kubernetes.io/instance": RELEASE,
            "app.kubernetes.io/component": "server",
        }
    }
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert spec["podMetricsEndpoints"] == [
        {
            "port": "metrics",
            "path": "/metrics",
            "scheme": "http",
            "interval": "30s",
            "scrapeTimeout": "10s",
        }
    ]
    pod_labels = autoscaled.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pod_labels.items() >= spec["selector"]["matchLabels"].items()


def test_metrics_are_on_a_port_no_service_or_ingress_routes(
    autoscaled: Rendered, canary: Rendered
) -> None:
    for rendered in (autoscaled, canary):
        (agent,) = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in agent["ports"]}
        assert ports == {"http": 8000, "metrics": 9464}
        assert rendered.one("ConfigMap")["data"]["METRICS_PORT"] == "9464"
        for service in rendered.all("Service"):
            assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
        for ingress in rendered.all("Ingress"):
            for rule in ingress["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    assert path["backend"]["service"]["port"] == {"name": "http"}
        # Only Prometheus's namespace reaches the metrics port.
        (policy,) = [p for p in rendered.all("NetworkPolicy") if p["metadata"]["name"] == FULLNAME]
        to_metrics = [
            r for r in policy["spec"]["ingress"] if {"port": 9464, "protocol": "TCP"} in r["ports"]
        ]
        (rule,) = to_metrics
        assert rule["from"] == [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ]


def test_alerts_cover_errors_latency_restarts_and_canary_failure(canary: Rendered) -> None:
    alerts = _alerts(canary)
    assert set(alerts) == {
        "AgentServiceHighErrorRate",
        "AgentServiceSlowRuns",
        "AgentServicePodRestarting",
        "AgentServiceReadinessFlapping",
        "AgentServiceDatabasePoolSaturated",
        "AgentServiceModelBudgetExhausted",
        "AgentServiceBackupTooOld",
        "AgentServiceCanaryFailed",
        "AgentServiceBackupFailed",
    }
    # The backup CronJob: its last success (or, never succeeded, its age) within
    # backupMaxAgeHours (13 h in this fixture), and no failed Job; promtool tests both.
    too_old = alerts["AgentServiceBackupTooOld"]["expr"]
    assert {name for name, _ in _selectors(too_old)} == {
        "kube_cronjob_status_last_successful_time",
        "kube_cronjob_created",
    }
    assert f"> {13 * 3600}" in too_old
    assert _selectors(alerts["AgentServiceBackupFailed"]["expr"]) == [
        (
            "kube_job_status_failed",
            {("namespace", "=", NAMESPACE), ("job_name", "=~", f"{FULLNAME}-backup-.*")},
        )
    ]
    errors = _selectors(alerts["AgentServiceHighErrorRate"]["expr"])
    runs = "agent_service_graph_executions_total"
    assert errors == [
        (runs, POD_MATCHERS | {("status", "=~", "error|timeout")}),
        (runs, POD_MATCHERS),
    ]
    assert alerts["AgentServiceHighErrorRate"]["expr"].rstrip().endswith("> 0.01")
    latency = alerts["AgentServiceSlowRuns"]["expr"]
    assert _selectors(latency) == [("agent_service_run_duration_seconds_bucket", POD_MATCHERS)]
    assert "histogram_quantile(0.99" in latency
    assert "sum by (graph, le)" in latency
    assert latency.rstrip().endswith("> 30")
    assert _selectors(alerts["AgentServicePodRestarting"]["expr"]) == [
        (
            "kube_pod_container_status_restarts_total",
            POD_MATCHERS | {("container", "=", "agent")},
        )
    ]
    # Flagger's gauge, whether its own `namespace` label survived the scrape or was renamed.
    failed = alerts["AgentServiceCanaryFailed"]["expr"]
    name = ("name", "=", FULLNAME)
    assert _selectors(failed) == [
        ("flagger_canary_status", {name, ("exported_namespace", "=", NAMESPACE)}),
        ("flagger_canary_status", {name, ("namespace", "=", NAMESPACE)}),
    ]
    assert failed.rstrip().endswith("== 2")
    for rule in alerts.values():
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"]


def test_alerts_query_only_metrics_that_exist(each_env: tuple[str, Rendered]) -> None:
    """Every series an alert reads is declared in app/agent_service/metrics.py or exported by
    kube-state-metrics or Flagger; an alert on a metric nobody exports never fires."""
    _, rendered = each_env
    if not rendered.all("PrometheusRule"):
        return
    service = _exposed_sample_names()
    assert "agent_service_graph_executions_total" in service
    used = {name for rule in _alerts(rendered).values() for name, _ in _selectors(rule["expr"])}
    assert used
    assert used - service - EXTERNAL_METRICS == set()


def test_bad_promql_is_caught() -> None:
    with pytest.raises(ValueError, match="unclosed"):
        _selectors("sum(rate(agent_service_graph_executions_total[5m])")


def test_thresholds_follow_the_values() -> None:
    rendered = render_env(
        "canary",
        {
            "monitoring": {
                "prometheusRule": {"errorRateThreshold": 0.05, "runDurationP99Seconds": 45}
            }
        },
    )
    alerts = _alerts(rendered)
    assert alerts["AgentServiceHighErrorRate"]["expr"].rstrip().endswith("> 0.05")
    assert alerts["AgentServiceHighErrorRate"]["annotations"]["summary"].startswith("More than 5% ")
    assert alerts["AgentServiceSlowRuns"]["expr"].rstrip().endswith("> 45")


def test_templated_alert_text_reaches_prometheus_unrendered(canary: Rendered) -> None:
    description = _alerts(canary)["AgentServiceHighErrorRate"]["annotations"]["description"]
    assert "{{ $value | humanizePercentage }}" in description


def test_without_the_canary_there_is_no_canary_alert(autoscaled: Rendered) -> None:
    assert "AgentServiceCanaryFailed" not in _alerts(autoscaled)


def test_monitoring_off_renders_no_prometheus_objects(existing_secret: Rendered) -> None:
    assert not existing_secret.all("PodMonitor")
    assert not existing_secret.all("PrometheusRule")


def test_metrics_behind_an_api_key_cannot_be_scraped() -> None:
    with pytest.raises(RenderError, match="PodMonitor cannot send X-API-Key"):
        render_env("autoscaled", {"config": {"metricsRequireAuth": True}})
