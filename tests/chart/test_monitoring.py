"""ServiceMonitor and PrometheusRule."""

from __future__ import annotations

import pytest

from tests.chart.support import FULLNAME, NAMESPACE, RELEASE, Rendered, RenderError, render_env

pytestmark = pytest.mark.helm


def _alerts(rendered: Rendered) -> dict[str, dict[str, object]]:
    (group,) = rendered.one("PrometheusRule")["spec"]["groups"]
    return {rule["alert"]: rule for rule in group["rules"]}


def test_service_monitor_scrapes_metrics_on_the_http_port(staging: Rendered) -> None:
    monitor = staging.one("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    assert spec["selector"] == {
        "matchLabels": {
            "app.kubernetes.io/instance": RELEASE,
            "app.kubernetes.io/component": "server",
        }
    }
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert spec["endpoints"] == [
        {
            "port": "http",
            "path": "/metrics",
            "scheme": "http",
            "interval": "30s",
            "scrapeTimeout": "10s",
        }
    ]
    # The chart's own Service carries the labels the monitor selects.
    labels = staging.one("Service")["metadata"]["labels"]
    assert labels.items() >= spec["selector"]["matchLabels"].items()


def test_with_the_canary_flaggers_primary_and_canary_services_get_the_monitor_labels(
    prod: Rendered,
) -> None:
    selector = prod.one("ServiceMonitor")["spec"]["selector"]["matchLabels"]
    service = prod.one("Canary")["spec"]["service"]
    assert service["primary"]["labels"] == selector
    assert service["canary"]["labels"] == selector
    # The apex Service points at the primary pods too; labelling it would scrape them twice.
    assert "apex" not in service


def test_alerts_cover_errors_latency_restarts_and_canary_failure(prod: Rendered) -> None:
    alerts = _alerts(prod)
    assert set(alerts) == {
        "AgentServiceHighErrorRate",
        "AgentServiceHighLatency",
        "AgentServicePodRestarting",
        "AgentServiceCanaryFailed",
    }
    errors = str(alerts["AgentServiceHighErrorRate"]["expr"])
    pods = 'namespace="agent", pod=~"agent-langgraph-agent-.*"'
    assert f'agent_http_requests_total{{{pods}, status=~"5.."}}' in errors
    assert errors.rstrip().endswith("> 0.01")
    latency = str(alerts["AgentServiceHighLatency"]["expr"])
    assert "histogram_quantile(0.99" in latency
    assert "agent_http_request_duration_seconds_bucket" in latency
    assert latency.rstrip().endswith("> 0.5")
    restarts = str(alerts["AgentServicePodRestarting"]["expr"])
    assert "kube_pod_container_status_restarts_total" in restarts
    assert 'container="agent"' in restarts
    canary = str(alerts["AgentServiceCanaryFailed"]["expr"])
    assert f'flagger_canary_status{{name="{FULLNAME}", namespace="{NAMESPACE}"}}' in canary
    assert canary.rstrip().endswith("== 2")
    for rule in alerts.values():
        assert rule["labels"]["severity"] in {"warning", "critical"}  # type: ignore[index]
        assert rule["annotations"]["summary"]  # type: ignore[index]


def test_templated_alert_text_reaches_prometheus_unrendered(prod: Rendered) -> None:
    description = _alerts(prod)["AgentServiceHighErrorRate"]["annotations"]["description"]  # type: ignore[index]
    assert "{{ $value | humanizePercentage }}" in description


def test_without_the_canary_there_is_no_canary_alert(staging: Rendered) -> None:
    assert "AgentServiceCanaryFailed" not in _alerts(staging)


def test_monitoring_off_renders_no_prometheus_objects(dev: Rendered) -> None:
    assert not dev.all("ServiceMonitor")
    assert not dev.all("PrometheusRule")


def test_metrics_behind_an_api_key_cannot_be_scraped() -> None:
    with pytest.raises(RenderError, match="ServiceMonitor cannot send X-API-Key"):
        render_env("staging", {"config": {"metricsRequireAuth": True}})
