"""The optional worker Deployment (`agent-service worker`): hardened like the server, selected by
no Service, scaled by the queue depth, fenced by a NetworkPolicy, scraped, and valid by the
Kubernetes schemas and checkov."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.support import (
    FULLNAME,
    Rendered,
    RenderError,
    containers,
    pod_labels,
    pod_spec,
    render_env,
)
from tools.kit import chart
from tools.kit.checkov import scan

pytestmark = pytest.mark.helm

WORKER = f"{FULLNAME}-worker"
ON: dict[str, Any] = {
    "worker": {"enabled": True, "concurrency": 3, "autoscaling": {"enabled": True}},
    "config": {"runWorkers": 0},
    "monitoring": {"enabled": True},
}


@pytest.fixture(scope="module")
def with_workers() -> Rendered:
    return render_env("canary", ON)


def test_workers_run_the_worker_command_hardened_like_the_server(with_workers: Rendered) -> None:
    worker = with_workers.one("Deployment", WORKER)
    server = with_workers.one("Deployment")
    (container,) = containers(worker)
    (agent,) = containers(server)
    assert container["args"] == ["worker", "--concurrency", "3"]
    assert container["securityContext"] == agent["securityContext"]
    assert pod_spec(worker)["securityContext"] == pod_spec(server)["securityContext"]
    assert container["envFrom"] == agent["envFrom"]
    assert container["volumeMounts"] == agent["volumeMounts"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert container["ports"] == [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}]
    # The HPA owns the replica count.
    assert "replicas" not in worker["spec"]
    config = with_workers.one("ConfigMap")["data"]
    assert config["RUN_WORKERS"] == "0"


def test_no_service_pdb_or_server_policy_selects_the_workers(with_workers: Rendered) -> None:
    labels = pod_labels(with_workers.one("Deployment", WORKER))
    assert labels["app.kubernetes.io/component"] == "worker"

    def selects(selector: dict[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in selector.items())

    for service in with_workers.all("Service"):
        assert not selects(service["spec"].get("selector", {})), service["metadata"]["name"]
    for kind in ("PodDisruptionBudget", "NetworkPolicy", "PodMonitor"):
        for manifest in with_workers.all(kind):
            selector = manifest["spec"].get("selector") or manifest["spec"].get("podSelector")
            is_workers = manifest["metadata"]["name"] == WORKER
            assert selects(selector["matchLabels"]) == is_workers, (kind, manifest["metadata"])


def test_the_worker_hpa_scales_on_the_queue_depth(with_workers: Rendered) -> None:
    hpa = with_workers.one("HorizontalPodAutoscaler", WORKER)
    assert hpa["spec"]["scaleTargetRef"]["name"] == WORKER
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"]["name"] == "agent_service_run_queue_depth"
    assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "4"}


def test_the_worker_policy_admits_only_prometheus(with_workers: Rendered) -> None:
    policy = with_workers.one("NetworkPolicy", WORKER)
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": 9464, "protocol": "TCP"}]
    ports = {port["port"] for rule in policy["spec"]["egress"] for port in rule.get("ports", [])}
    assert 5432 in ports


def test_the_workers_render_valid_and_pass_checkov(with_workers: Rendered) -> None:
    assert chart.validate(with_workers) == []
    report = scan(with_workers)
    failed = [f"{f['check_id']} on {f['resource']}" for f in report.failed]
    assert failed == []


def test_off_by_default_and_refused_without_postgres() -> None:
    assert all(m["metadata"]["name"] != WORKER for m in render_env("minimal").manifests)
    with pytest.raises(RenderError, match=r"worker\.enabled requires config\.databaseUrl"):
        render_env("minimal", {"worker": {"enabled": True}})
    with pytest.raises(RenderError, match="concurrency"):
        render_env("canary", {"worker": {"enabled": True, "concurrency": 0}})
    with pytest.raises(RenderError, match="minReplicas"):
        render_env(
            "canary",
            {
                "worker": {
                    "enabled": True,
                    "autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2},
                }
            },
        )
