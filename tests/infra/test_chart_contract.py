"""The values the program hands to the Helm release, checked against the chart itself: its
values.schema.json (after Helm's merge with values.yaml) and a real `helm template`. Drift
between the chart and the program fails here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from infra.release import CHART_PATH
from tests.infra.support import STACKS, offline_run
from tools.kit.chart import Rendered
from tools.plan.record import render_release


def helm_merge(defaults: Any, overrides: Any) -> Any:
    """Helm's coalescing of user values over a chart's: maps merge key by key, a null removes
    the key, anything else replaces."""
    if not (isinstance(defaults, dict) and isinstance(overrides, dict)):
        return overrides
    merged = dict(defaults)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif key in merged:
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _chart_file(name: str) -> Path:
    path = CHART_PATH / name
    assert path.is_file(), f"the chart has no {name}: the program's values cannot be checked"
    return path


def _merged_values(stack: str) -> dict[str, Any]:
    defaults = yaml.safe_load(_chart_file("values.yaml").read_text())
    merged: dict[str, Any] = helm_merge(defaults, offline_run(stack).service_release_values())
    return merged


def test_helm_merge_follows_helm() -> None:
    defaults = {"a": {"b": 1, "c": 2}, "d": [1, 2], "e": 1}
    assert helm_merge(defaults, {"a": {"b": 3}, "d": [9], "e": None}) == {
        "a": {"b": 3, "c": 2},
        "d": [9],
    }


@pytest.mark.parametrize("stack", STACKS)
def test_values_match_the_chart_schema(stack: str) -> None:
    schema = json.loads(_chart_file("values.schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(_merged_values(stack))
    ]
    assert errors == [], "\n".join(errors)


@pytest.mark.parametrize("stack", STACKS)
def test_the_schema_rejects_a_key_the_chart_does_not_know(stack: str) -> None:
    """The check above can fail: the chart's schema refuses unknown keys."""
    schema = json.loads(_chart_file("values.schema.json").read_text())
    values = _merged_values(stack)
    values["config"]["databaseURL"] = "postgresql://typo"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(values, schema)


def _render(stack: str) -> Rendered:
    """The stack's release values rendered exactly as `make plan` renders them."""
    _, rendered = render_release(offline_run(stack))
    return rendered


@pytest.mark.helm
@pytest.mark.parametrize("stack", STACKS)
def test_the_chart_renders_with_the_programs_values(stack: str) -> None:
    rendered = _render(stack)
    # Every manifest valid for Kubernetes 1.36 (strict) or its CRD's schema.
    assert rendered.schema_errors == []
    documents = rendered.manifests
    kinds = {doc["kind"] for doc in documents}
    assert {"Deployment", "ConfigMap", "ExternalSecret", "NetworkPolicy", "CronJob"} <= kinds
    run = offline_run(stack)
    roles = {r.name: r.outputs["arn"] for r in run.of_type("aws:iam/role:Role")}
    # Not the pre-install hook copy of the service account (it only exists during install).
    accounts = {
        doc["metadata"]["name"]: doc
        for doc in documents
        if doc["kind"] == "ServiceAccount"
        and "helm.sh/hook" not in (doc["metadata"].get("annotations") or {})
    }
    assert accounts["langgraph-agent"]["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": roles[f"agent-{stack}-service"]
    }
    assert accounts["langgraph-agent-backup"]["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": roles[f"agent-{stack}-backup"]
    }
    progressive = {"Canary", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    monitoring = {"PodMonitor", "PrometheusRule"}
    # No stack renders an Ingress; with the canary Flagger generates the HTTPRoute.
    assert not {"Ingress", "HTTPRoute"} & kinds
    if stack == "dev":
        assert not (progressive | monitoring) & kinds
    else:
        assert progressive | monitoring <= kinds
