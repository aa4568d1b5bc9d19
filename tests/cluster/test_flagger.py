"""Flagger for real against the chart's Canary: bootstrap, the PDB, turning the canary on and
off on a live release, deleting the Canary, and a new revision without metrics.

Not exercised here: the traffic split itself (no nginx ingress controller runs; Flagger only
writes the canary Ingress' weight annotations), the webhooks (every non-loopback URL Flagger
calls fails at a loopback proxy) and a metric analysis that passes (Flagger's metrics server is
a closed loopback port, so every metric check fails; driving it with a real Prometheus needs
the service's metrics from real pods, which kwok does not run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.kube import CHART_DIR, Kube, KubeError, WatchEvent, recording, values_file

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.helm]

RELEASE = "agent"
FULLNAME = "agent-langgraph-agent"
PRIMARY = f"{FULLNAME}-primary"
WAIT = ["--wait=watcher", "--timeout=120s"]
# Flagger runs each Canary's loop at its analysis interval (1m in the fixtures), never faster
# than 10 s; 10 s keeps the tests short without changing what Flagger does at each step.
FAST = {"canary": {"analysis": {"interval": "10s", "threshold": 2}}}


class EndpointGap(AssertionError):
    """The apex Service lost its ready endpoints (or was deleted) during the change."""


class OwnershipConflict(AssertionError):
    """Helm refused an object that exists but is not the release's."""


class TargetNotRestored(AssertionError):
    """After the Canary was deleted the target Deployment did not serve again."""


def _canary_fixture() -> Path:
    for path in sorted((CHART_DIR / "ci").glob("*-values.yaml")):
        if ((yaml.safe_load(path.read_text()) or {}).get("canary") or {}).get("enabled"):
            return path
    raise AssertionError("no CI fixture enables the canary")


def _install(kube: Kube, namespace: str, tmp: Path, *, canary: bool) -> list[str]:
    overrides = values_file(tmp, "fast", FAST)
    files = ["-f", str(_canary_fixture()), "-f", str(overrides)]
    if not canary:
        files += ["-f", str(values_file(tmp, "off", {"canary": {"enabled": False}}))]
    kube.helm("install", RELEASE, str(CHART_DIR), *files, *WAIT, namespace=namespace)
    kube.materialise_external_secrets(namespace)
    return files


def _phase(kube: Kube, namespace: str) -> str:
    canary = kube.get("canary", FULLNAME, namespace=namespace)
    phase: str = (canary.get("status") or {}).get("phase", "")
    return phase


def _wait_phase(kube: Kube, namespace: str, phase: str, timeout: float = 120) -> None:
    kube.wait_for(
        lambda: _phase(kube, namespace) == phase,
        f"Canary phase {phase}",
        namespace=namespace,
        timeout=timeout,
    )


def _ready(kube: Kube, namespace: str, name: str) -> int:
    if not kube.exists("deployment", name, namespace):
        return 0
    status = kube.get("deployment", name, namespace=namespace)["status"]
    ready: int = status.get("readyReplicas", 0)
    return ready


def _assert_no_endpoint_gap(events: list[WatchEvent], service: str) -> None:
    """Replays Service and EndpointSlice events in commit order: the Service must never be
    deleted and, once it had ready endpoints, must never have none."""
    slices: dict[str, int] = {}
    seen_ready = False
    for event in events:
        if event.kind == "services" and event.name == service and event.type == "DELETED":
            raise EndpointGap(
                f"Service {service} deleted at resourceVersion {event.resource_version}"
            )
        if event.kind != "endpointslices":
            continue
        labels = event.obj["metadata"].get("labels") or {}
        if labels.get("kubernetes.io/service-name") != service:
            continue
        ready = sum(
            1 for e in event.obj.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")
        )
        slices[event.name] = 0 if event.type == "DELETED" else ready
        total = sum(slices.values())
        if seen_ready and total == 0:
            raise EndpointGap(
                f"{service} had no ready endpoint at resourceVersion {event.resource_version}"
            )
        seen_ready = seen_ready or total > 0


def test_bootstrap_creates_primary_and_the_pdb_selects_it(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    _install(kube, namespace, tmp_path, canary=True)
    _wait_phase(kube, namespace, "Initialized")

    for kind, name in [
        ("deployment", PRIMARY),
        ("service", FULLNAME),
        ("service", PRIMARY),
        ("service", f"{FULLNAME}-canary"),
        ("horizontalpodautoscaler", PRIMARY),
    ]:
        assert kube.exists(kind, name, namespace), f"Flagger did not create {kind}/{name}"
    target = kube.get("deployment", FULLNAME, namespace=namespace)
    assert target["spec"]["replicas"] == 0, "Flagger scales the target to zero after bootstrap"
    hpa = kube.get("horizontalpodautoscaler", PRIMARY, namespace=namespace)
    assert hpa["spec"]["scaleTargetRef"]["name"] == PRIMARY

    pdb = kube.get("poddisruptionbudget", FULLNAME, namespace=namespace)
    selector = ",".join(f"{k}={v}" for k, v in pdb["spec"]["selector"]["matchLabels"].items())
    minimum = int(
        kube.get("horizontalpodautoscaler", PRIMARY, namespace=namespace)["spec"]["minReplicas"]
    )
    kube.wait_for(
        lambda: _ready(kube, namespace, PRIMARY) >= minimum,
        "primary at minReplicas",
        namespace=namespace,
    )
    selected = kube.names("pods", namespace, selector)
    assert selected, "the PDB selects no pod"
    assert all(n.startswith(f"{PRIMARY}-") for n in selected), selected
    # The chart's zone topology spread, applied by the real scheduler to the primary pods.
    nodes = {n["metadata"]["name"]: n for n in kube.get("nodes", namespace=namespace)["items"]}
    pods = [kube.get("pod", name, namespace=namespace) for name in selected]
    zones = {
        nodes[p["spec"]["nodeName"]]["metadata"]["labels"]["topology.kubernetes.io/zone"]
        for p in pods
    }
    assert len(zones) == min(len(pods), len(nodes)), zones
    kube.wait_for(
        lambda: (
            kube.get("poddisruptionbudget", FULLNAME, namespace=namespace)["status"].get(
                "currentHealthy", 0
            )
            >= minimum
        ),
        "the PDB counting the primary pods",
        namespace=namespace,
    )
    # The EndpointSlice controller follows pod readiness asynchronously: wait, do not sample.
    kube.wait_for(
        lambda: kube.ready_endpoints(FULLNAME, namespace) >= minimum,
        "the Service's ready endpoints at minReplicas",
        namespace=namespace,
    )


def test_turning_the_canary_off_on_a_live_release(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    """docs/canary.md: delete the Canary (revertOnDeletion: Flagger scales the target back up
    and points the Service at it), then upgrade with the canary off. Helm owns the Service
    throughout: no ownership conflict, and it never loses its endpoints."""
    files = _install(kube, namespace, tmp_path, canary=True)
    _wait_phase(kube, namespace, "Initialized")
    off = values_file(tmp_path, "off", {"canary": {"enabled": False}})
    with recording(kube, namespace, "services", "endpointslices") as recorder:
        kube.kubectl("delete", "canary", FULLNAME, "-n", namespace, "--wait=true", "--timeout=60s")
        kube.wait_for(
            lambda: _ready(kube, namespace, FULLNAME) >= 1, "target serving", namespace=namespace
        )
        try:
            kube.helm(
                "upgrade", RELEASE, str(CHART_DIR), *files, "-f", str(off), *WAIT,
                namespace=namespace,
            )  # fmt: skip
        except KubeError as error:
            if "invalid ownership metadata" in str(error):
                raise OwnershipConflict(str(error)) from None
            raise
    assert not kube.exists("canary", FULLNAME, namespace)
    _assert_no_endpoint_gap(recorder.events, FULLNAME)


def test_turning_the_canary_on_for_a_live_release(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    """docs/canary.md: canary on with the Service in handover (it selects old and -primary pods
    alike) until Flagger has initialised, then on Flagger's own selector."""
    files = _install(kube, namespace, tmp_path, canary=False)
    # helm --wait waits for ready pods; the EndpointSlice that lists them follows asynchronously.
    kube.wait_for(
        lambda: kube.ready_endpoints(FULLNAME, namespace) >= 1,
        "apex endpoints after install",
        namespace=namespace,
    )
    handover = values_file(tmp_path, "handover", {"canary": {"enabled": True, "handover": True}})
    on = values_file(tmp_path, "on", {"canary": {"enabled": True, "handover": False}})
    with recording(kube, namespace, "services", "endpointslices") as recorder:
        kube.helm(
            "upgrade", RELEASE, str(CHART_DIR), *files, "-f", str(handover), *WAIT,
            namespace=namespace,
        )  # fmt: skip
        _wait_phase(kube, namespace, "Initialized")
        kube.helm(
            "upgrade", RELEASE, str(CHART_DIR), *files, "-f", str(on), *WAIT, namespace=namespace
        )
        kube.wait_for(
            lambda: kube.ready_endpoints(FULLNAME, namespace) >= 1,
            "apex endpoints",
            namespace=namespace,
        )
    _assert_no_endpoint_gap(recorder.events, FULLNAME)


def _delete_canary_and_expect_target_back(kube: Kube, namespace: str) -> None:
    kube.kubectl("delete", "canary", FULLNAME, "-n", namespace, "--wait=true", "--timeout=60s")
    try:
        kube.wait_for(
            lambda: _ready(kube, namespace, FULLNAME) >= 1,
            f"{FULLNAME} serving again after the Canary was deleted",
            namespace=namespace,
            timeout=30,
        )
    except KubeError as error:
        target = kube.get("deployment", FULLNAME, namespace=namespace)
        raise TargetNotRestored(
            f"{FULLNAME} replicas={target['spec']['replicas']}: {error}"
        ) from None


def test_deleting_the_chart_canary_restores_the_target(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    _install(kube, namespace, tmp_path, canary=True)
    _wait_phase(kube, namespace, "Initialized")
    _delete_canary_and_expect_target_back(kube, namespace)


def test_revert_on_deletion_restores_the_target(kube: Kube, namespace: str, tmp_path: Path) -> None:
    """Flagger itself: with revertOnDeletion the Canary gets Flagger's finalizer and its
    deletion scales the target back up (the chart sets it since issue 17)."""
    _install(kube, namespace, tmp_path, canary=True)
    _wait_phase(kube, namespace, "Initialized")
    patch = json.dumps({"spec": {"revertOnDeletion": True}})
    kube.kubectl("patch", "canary", FULLNAME, "-n", namespace, "--type=merge", "-p", patch)
    kube.wait_for(
        lambda: kube.get("canary", FULLNAME, namespace=namespace)["metadata"].get("finalizers"),
        "Flagger's finalizer on the Canary",
        namespace=namespace,
    )
    _delete_canary_and_expect_target_back(kube, namespace)


def test_new_revision_without_metrics_is_rolled_back(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    """An upgrade starts an analysis; with no metrics every check fails, and after
    `threshold` failures Flagger rolls back: the primary never runs the new template."""
    files = _install(kube, namespace, tmp_path, canary=True)
    _wait_phase(kube, namespace, "Initialized")
    changed = values_file(
        tmp_path, "changed", {"podAnnotations": {"test.agent-platform/revision": "2"}}
    )
    kube.helm(
        "upgrade", RELEASE, str(CHART_DIR), *files, "-f", str(changed), *WAIT, namespace=namespace
    )
    _wait_phase(kube, namespace, "Failed", timeout=180)
    primary: dict[str, Any] = kube.get("deployment", PRIMARY, namespace=namespace)
    annotations = primary["spec"]["template"]["metadata"].get("annotations") or {}
    assert "test.agent-platform/revision" not in annotations
    assert kube.get("deployment", FULLNAME, namespace=namespace)["spec"]["replicas"] == 0
    events = kube.events(namespace)
    assert "Rolling back" in events, events
