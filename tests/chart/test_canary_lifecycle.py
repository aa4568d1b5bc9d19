"""Turning the canary on and off on a live release (docs/canary.md), step by step at render
level: Helm owns the same objects at every step (no object passes between Helm and Flagger,
which Helm refuses with "invalid ownership metadata"), and the Service always selects pods that
exist at that step."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.support import FULLNAME, Rendered, render_env

pytestmark = pytest.mark.helm

# What Flagger creates and owns for the Canary (docs.flagger.app "How it works").
FLAGGER_OWNED = {
    ("Deployment", f"{FULLNAME}-primary"),
    ("HorizontalPodAutoscaler", f"{FULLNAME}-primary"),
    ("Service", f"{FULLNAME}-primary"),
    ("Service", f"{FULLNAME}-canary"),
    ("Ingress", f"{FULLNAME}-canary"),
}
TARGET = {"app.kubernetes.io/name": "langgraph-agent"}
PRIMARY = {"app.kubernetes.io/name": "langgraph-agent-primary"}
EVERY_SERVER_POD = {"app.kubernetes.io/instance": "agent", "app.kubernetes.io/component": "server"}


def _step(canary: dict[str, Any]) -> Rendered:
    return render_env("canary", {"canary": canary}, upgrade=True)


def _helm_owned(rendered: Rendered) -> set[tuple[str, str]]:
    return {(m["kind"], m["metadata"]["name"]) for m in rendered.manifests}


def _selects(selector: dict[str, str], pod_labels: dict[str, str]) -> bool:
    return selector.items() <= pod_labels.items()


def _pod_labels(rendered: Rendered, primary: bool) -> dict[str, str]:
    labels = dict(rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"])
    if primary:  # Flagger's copy suffixes the selector label's value with -primary
        labels["app.kubernetes.io/name"] += "-primary"
    return labels


def test_turning_the_canary_on_keeps_every_object_helms_and_the_service_served() -> None:
    off = _step({"enabled": False})
    handover = _step({"enabled": True, "handover": True})
    on = _step({"enabled": True})
    service_names = {("Service", FULLNAME)}
    for rendered in (off, handover, on):
        assert service_names <= _helm_owned(rendered)
        assert _helm_owned(rendered) & FLAGGER_OWNED == set()
    # Off: the target pods. Handover: old target pods and the new -primary ones alike, as
    # Flagger scales one down while the other starts. On: Flagger's own apex selector.
    assert off.one("Service")["spec"]["selector"] == TARGET
    handover_selector = handover.one("Service")["spec"]["selector"]
    assert handover_selector == EVERY_SERVER_POD
    assert _selects(handover_selector, _pod_labels(handover, primary=False))
    assert _selects(handover_selector, _pod_labels(handover, primary=True))
    assert on.one("Service")["spec"]["selector"] == PRIMARY
    assert _selects(PRIMARY, _pod_labels(on, primary=True))
    assert not _selects(PRIMARY, _pod_labels(on, primary=False))
    assert on.one("Canary")["spec"]["revertOnDeletion"] is True


def test_turning_the_canary_off_after_deleting_the_canary_serves_the_target_pods() -> None:
    """Step 1 deletes the Canary (revertOnDeletion: Flagger scales the target Deployment back up
    and points the apex Service at it); step 2 upgrades with the canary off, which renders the
    same selector Flagger restored and no Flagger kind."""
    off = _step({"enabled": False})
    assert off.one("Service")["spec"]["selector"] == TARGET
    assert not off.all("Canary")
    assert not off.all("MetricTemplate")
    assert _helm_owned(off) & FLAGGER_OWNED == set()


def test_the_procedure_is_documented(canary: Rendered) -> None:
    from tools.kit.programs import REPO_ROOT

    text = (REPO_ROOT / "docs" / "canary.md").read_text()
    for step in (
        "canary.handover=true",
        "wait canary/",
        "delete canary",
        "revertOnDeletion",
    ):
        assert step in text, step
