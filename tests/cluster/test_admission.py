"""What only the API server shows: Pod Security admission, strict field validation and CRD
schemas, on the chart's own objects with one thing broken at a time."""

from __future__ import annotations

import copy
import subprocess
from typing import Any

import pytest
import yaml

from tests.cluster.kube import CHART_DIR, Kube

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.helm]

CI = CHART_DIR / "ci"


def _rendered(kube: Kube, namespace: str, fixture: str) -> list[dict[str, Any]]:
    out = kube.helm(
        "template", "agent", str(CHART_DIR), "-f", str(CI / fixture), namespace=namespace
    )
    return [d for d in yaml.safe_load_all(out) if d]


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, [d["kind"] for d in docs]
    return copy.deepcopy(found[0])


def _apply(kube: Kube, namespace: str, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return kube.run(
        "kubectl", "apply", "--server-side", "--validate=strict", "-n", namespace, "-f", "-",
        stdin=yaml.safe_dump(obj),
    )  # fmt: skip


def _fixture_with(name: str) -> str:
    """The first CI fixture whose values turn `name` on (fixtures are renamed by shape)."""
    for path in sorted(CI.glob("*-values.yaml")):
        values = yaml.safe_load(path.read_text()) or {}
        if (values.get(name) or {}).get("enabled"):
            return path.name
    raise AssertionError(f"no CI fixture enables {name}")


def test_chart_pod_is_admitted_and_a_noncompliant_one_rejected(kube: Kube, namespace: str) -> None:
    deployment = _one(_rendered(kube, namespace, "minimal-values.yaml"), "Deployment")
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "chart-pod"},
        # The chart's ServiceAccount is not created here; admission of the pod is the point.
        "spec": {**deployment["spec"]["template"]["spec"], "serviceAccountName": "default"},
    }
    admitted = kube.run(
        "kubectl",
        "create",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=yaml.safe_dump(pod),
    )
    assert admitted.returncode == 0, admitted.stderr

    escalating = copy.deepcopy(pod)
    escalating["metadata"]["name"] = "escalating"
    escalating["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    refused = kube.run(
        "kubectl",
        "create",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=yaml.safe_dump(escalating),
    )
    assert refused.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in refused.stderr
    assert "allowPrivilegeEscalation != false" in refused.stderr


def test_noncompliant_pod_template_shows_as_failedcreate_events(kube: Kube, namespace: str) -> None:
    """A Deployment is admitted even when its pods cannot be: the ReplicaSet controller's pod
    creation fails, which `helm install --wait` only sees as a timeout. The events say why."""
    deployment = _one(_rendered(kube, namespace, "minimal-values.yaml"), "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["capabilities"] = {"add": ["NET_RAW"]}
    deployment["spec"]["template"]["spec"]["serviceAccountName"] = "default"
    applied = _apply(kube, namespace, deployment)
    assert applied.returncode == 0, applied.stderr
    assert "would violate PodSecurity" in applied.stderr  # a warning, not a refusal
    name = deployment["metadata"]["name"]
    rollout = kube.run(
        "kubectl", "rollout", "status", f"deployment/{name}", "-n", namespace, "--timeout=5s"
    )
    assert rollout.returncode != 0
    events = kube.wait_for(
        lambda: "FailedCreate" in (text := kube.events(namespace)) and text,
        "FailedCreate events",
        namespace=namespace,
    )
    assert 'violates PodSecurity "restricted:latest"' in events, events
    assert "NET_RAW" in events, events


def test_server_rejects_an_unknown_field(kube: Kube, namespace: str) -> None:
    deployment = _one(_rendered(kube, namespace, "minimal-values.yaml"), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {
        "tcpSocket": {"port": 1}
    }
    refused = _apply(kube, namespace, deployment)
    assert refused.returncode != 0
    # Server-side apply (what Helm 4 uses by default) names the field against the schema.
    assert ".livenesProbe: field not declared in schema" in refused.stderr, refused.stderr


def test_server_rejects_a_canary_that_breaks_its_crd_schema(kube: Kube, namespace: str) -> None:
    canary = _one(_rendered(kube, namespace, _fixture_with("canary")), "Canary")
    canary["spec"]["analysis"]["threshold"] = "five"
    refused = _apply(kube, namespace, canary)
    assert refused.returncode != 0
    assert "spec.analysis.threshold" in refused.stderr, refused.stderr


def test_pod_monitor_is_validated_against_the_operator_crd(kube: Kube, namespace: str) -> None:
    """The chart's CRD objects against the projects' own CRDs (not the repo's JSON copies)."""
    docs = _rendered(kube, namespace, _fixture_with("monitoring"))
    kinds = {d["kind"] for d in docs}
    assert {"PodMonitor", "PrometheusRule"} <= kinds
    broken = _one(docs, "PodMonitor")
    broken["spec"]["podMetricsEndpoints"][0]["scheme"] = "gopher"
    refused = _apply(kube, namespace, broken)
    assert refused.returncode != 0
    assert "scheme" in refused.stderr, refused.stderr
