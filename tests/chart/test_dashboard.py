"""The Grafana dashboard ConfigMap: labelled for Grafana's sidecar, valid JSON, every PromQL
expression parses and reads only series the service (or Flagger) exports, for this release."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.chart.support import FULLNAME, NAMESPACE, Rendered, render_env
from tests.chart.test_monitoring import _exposed_sample_names, _selectors

pytestmark = pytest.mark.helm

FLAGGER = {"flagger_canary_weight"}


def _dashboard(rendered: Rendered) -> dict[str, Any]:
    config_map = rendered.one("ConfigMap", f"{FULLNAME}-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = config_map["data"].values()
    dashboard: dict[str, Any] = json.loads(text)
    return dashboard


def _expressions(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_the_dashboard_is_json_for_this_release(canary: Rendered) -> None:
    dashboard = _dashboard(canary)
    assert dashboard["title"] == f"Agent service ({FULLNAME})"
    assert 0 < len(dashboard["uid"]) <= 40
    assert "__" not in json.dumps(dashboard).replace("__name__", "")  # every token replaced
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_every_query_parses_and_reads_exported_series_of_this_release(canary: Rendered) -> None:
    exported = _exposed_sample_names() | FLAGGER
    used: set[str] = set()
    for expr in _expressions(_dashboard(canary)):
        for name, matchers in _selectors(expr):  # raises on PromQL that does not parse
            used.add(name)
            assert name in exported, f"{name} is exported by nobody: {expr}"
            labels = {label: value for label, _, value in matchers}
            if name in FLAGGER:
                assert labels["name"] == FULLNAME
            else:
                assert labels["namespace"] == NAMESPACE
                assert labels["pod"] == f"{FULLNAME}-.*"
    # RED, runs per graph, tokens and cost per model, pool, cache hit ratio, canary weight.
    assert {
        "agent_service_http_requests_total",
        "agent_service_http_request_duration_seconds_bucket",
        "agent_service_graph_executions_total",
        "agent_service_run_duration_seconds_bucket",
        "agent_service_model_tokens_total",
        "agent_service_model_cost_usd_total",
        "agent_service_db_pool_size",
        "agent_service_node_cache_hits_total",
        "flagger_canary_weight",
    } <= used


def test_a_broken_query_would_be_caught() -> None:
    with pytest.raises(ValueError, match="unclosed"):
        _selectors("sum(rate(agent_service_http_requests_total[5m])")


def test_no_dashboard_without_monitoring_or_when_off(existing_secret: Rendered) -> None:
    assert not existing_secret.has("ConfigMap", f"{FULLNAME}-dashboard")
    off = render_env("canary", {"monitoring": {"dashboard": {"enabled": False}}})
    assert not off.has("ConfigMap", f"{FULLNAME}-dashboard")
