"""Availability defaults: a disruption budget that never blocks a drain, a drain that covers
the request timeout, memory optional in the HPA, a priority class; and the extension points
users of a chart expect (extra env, volumes, containers, labels, annotations, policy rules)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.chart.support import RenderError, containers, pod_spec, render_env

pytestmark = pytest.mark.helm


@pytest.mark.parametrize(
    ("env", "budget", "message"),
    [
        ("autoscaled", {"maxUnavailable": 0}, "maxUnavailable 0 blocks every eviction"),
        ("autoscaled", {"maxUnavailable": "0%"}, "maxUnavailable 0 blocks every eviction"),
        # autoscaled's HPA starts at 2 replicas: minAvailable 2 leaves no pod to evict.
        (
            "autoscaled",
            {"minAvailable": 2, "maxUnavailable": None},
            r"minAvailable \(2\) is not below the smallest replica count \(2\)",
        ),
        ("canary", {"minAvailable": "100%", "maxUnavailable": None}, "minAvailable 100%"),
    ],
)
def test_a_budget_that_blocks_every_eviction_is_refused(
    env: str, budget: dict[str, Any], message: str
) -> None:
    with pytest.raises(RenderError, match=message):
        render_env(env, {"podDisruptionBudget": budget})


def test_a_budget_below_the_replica_count_renders() -> None:
    pdb = render_env(
        "canary", {"podDisruptionBudget": {"minAvailable": 2, "maxUnavailable": None}}
    ).one("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 2
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_the_drain_must_cover_the_request_timeout() -> None:
    with pytest.raises(
        RenderError,
        match=re.escape(
            "config.shutdownGraceSeconds (30) must be at least config.requestTimeoutSeconds (60)"
        ),
    ):
        render_env("existing-secret", {"config": {"shutdownGraceSeconds": 30}})
    rendered = render_env(
        "existing-secret", {"config": {"shutdownGraceSeconds": 30, "requestTimeoutSeconds": 30}}
    )
    assert rendered.one("ConfigMap")["data"]["REQUEST_TIMEOUT_SECONDS"] == "30"


def test_memory_is_optional_in_the_hpa() -> None:
    hpa = render_env("autoscaled", {"autoscaling": {"targetMemoryUtilizationPercentage": None}})
    metrics = hpa.one("HorizontalPodAutoscaler")["spec"]["metrics"]
    assert [m["resource"]["name"] for m in metrics] == ["cpu"]


def test_priority_class_name() -> None:
    assert "priorityClassName" not in pod_spec(render_env("existing-secret").one("Deployment"))
    spec = pod_spec(
        render_env("existing-secret", {"priorityClassName": "agent-critical"}).one("Deployment")
    )
    assert spec["priorityClassName"] == "agent-critical"


EXTRAS: dict[str, Any] = {
    "extraEnv": [
        {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "team=agents"},
        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
    ],
    "extraVolumes": [{"name": "extra-ca", "configMap": {"name": "corporate-ca"}}],
    "extraVolumeMounts": [{"name": "extra-ca", "mountPath": "/etc/extra-ca", "readOnly": True}],
    "initContainers": [{"name": "wait", "image": "busybox:1.36", "command": ["true"]}],
    "sidecars": [{"name": "otel-agent", "image": "otel/opentelemetry-collector:0.110.0"}],
    "podAnnotations": {"example.com/owner": "agents"},
    "podLabels": {"team": "agents"},
    "service": {"annotations": {"example.com/scrape": "false"}},
    "networkPolicy": {
        "extraIngress": [
            {
                "from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                "ports": [{"port": 8000}],
            }
        ],
        "extraEgress": [{"to": [{"ipBlock": {"cidr": "10.40.0.0/16"}}], "ports": [{"port": 4317}]}],
    },
}


def test_extension_points_reach_the_pod_service_and_policy() -> None:
    rendered = render_env("autoscaled", EXTRAS)
    deployment = rendered.one("Deployment")
    spec = pod_spec(deployment)
    agent, sidecar = containers(deployment)
    assert agent["env"] == EXTRAS["extraEnv"]
    assert {"name": "extra-ca", "mountPath": "/etc/extra-ca", "readOnly": True} in agent[
        "volumeMounts"
    ]
    assert sidecar["name"] == "otel-agent"
    assert spec["initContainers"] == EXTRAS["initContainers"]
    assert {"name": "extra-ca", "configMap": {"name": "corporate-ca"}} in spec["volumes"]
    template = deployment["spec"]["template"]["metadata"]
    assert template["annotations"]["example.com/owner"] == "agents"
    assert template["labels"]["team"] == "agents"
    assert rendered.one("Service")["metadata"]["annotations"] == {"example.com/scrape": "false"}
    policy = rendered.one("NetworkPolicy")["spec"]
    assert EXTRAS["networkPolicy"]["extraIngress"][0] in policy["ingress"]
    assert EXTRAS["networkPolicy"]["extraEgress"][0] in policy["egress"]


def test_extra_env_cannot_override_a_chart_setting() -> None:
    with pytest.raises(RenderError, match="extraEnv DATABASE_URL is set by the chart"):
        render_env(
            "autoscaled", {"extraEnv": [{"name": "DATABASE_URL", "value": "postgresql://x"}]}
        )


@pytest.mark.parametrize(
    "values",
    [
        {"extraEnv": [{"name": "1BAD"}]},
        {"extraEnv": [{"value": "no name"}]},
        {"extraVolumeMounts": [{"name": "x"}]},
        {"sidecars": [{"image": "no-name"}]},
        {"podDisruptionBudget": {"unhealthyPodEvictionPolicy": "Never"}},
        {"networkPolicy": {"extraEgress": ["not an object"]}},
    ],
)
def test_the_schema_refuses_malformed_extensions(values: dict[str, Any]) -> None:
    with pytest.raises(RenderError, match="values don't meet the specifications of the schema"):
        render_env("autoscaled", values)


def test_with_no_bound_set_the_budget_is_one_unavailable_pod() -> None:
    pdb = render_env("autoscaled", {"podDisruptionBudget": {"maxUnavailable": None}})
    assert pdb.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
