"""Every rendered object is valid: Kubernetes 1.36 schemas (strict) for built-in kinds, the
schemas in schemas/ for the CRD kinds; plus `helm lint --strict` and `helm package`."""

from __future__ import annotations

import copy
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.chart.support import (
    CHART_DIR,
    CI_VALUES,
    KUBERNETES_VERSION,
    SCHEMAS_DIR,
    Rendered,
    helm,
    load_yaml,
)
from tools.kit import chart
from tools.kit.programs import REPO_ROOT

pytestmark = pytest.mark.helm
CRD_KINDS = {
    ("flagger.app/v1beta1", "Canary"),
    ("flagger.app/v1beta1", "MetricTemplate"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("external-secrets.io/v1", "ExternalSecret"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
}


def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    schema = chart.crd_schema(api_version, kind)
    assert schema is not None, f"no schema for {api_version} {kind} in {SCHEMAS_DIR}"
    return schema


def test_kubernetes_validate_ships_the_target_version() -> None:
    # validate() falls back to nothing: a missing version would raise, not pass silently.
    kubernetes_validate.validate(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}},
        KUBERNETES_VERSION,
        strict=True,
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "datum": {}},
            KUBERNETES_VERSION,
            strict=True,
        )


def test_every_object_is_valid(each_env: tuple[str, Rendered]) -> None:
    env, rendered = each_env
    assert [f"{env}: {error}" for error in chart.validate(rendered)] == []


def test_the_crd_kinds_used_are_exactly_those_with_schemas(
    canary: Rendered, autoscaled: Rendered
) -> None:
    used = {(m["apiVersion"], m["kind"]) for m in [*canary.manifests, *autoscaled.manifests]}
    assert used & CRD_KINDS == CRD_KINDS
    assert {p.stem for p in SCHEMAS_DIR.glob("*.json")} == {
        f"{api.replace('/', '_')}_{kind}" for api, kind in CRD_KINDS
    }


@pytest.mark.parametrize(
    ("kind", "mutate", "message"),
    [
        ("Canary", lambda s: s["analysis"].pop("stepWeight"), "is not valid under any of"),
        ("Canary", lambda s: s.update(stages=[{"weight": 10}]), "Additional properties"),
        ("Canary", lambda s: s["targetRef"].update(kind="Job"), "is not one of"),
        (
            "PodMonitor",
            lambda s: s["podMetricsEndpoints"][0].update(interval="30 seconds"),
            "does not match",
        ),
        (
            "PrometheusRule",
            lambda s: s["groups"][0]["rules"][0].pop("expr"),
            "'expr' is a required",
        ),
        ("ExternalSecret", lambda s: s["target"].update(creationPolicy="Always"), "is not one of"),
    ],
)
def test_crd_schemas_reject_what_the_crd_rejects(
    canary: Rendered, kind: str, mutate: Any, message: str
) -> None:
    manifest = json.loads(json.dumps(canary.all(kind)[0]))
    mutate(manifest["spec"])
    errors = list(
        jsonschema.Draft7Validator(crd_schema(manifest["apiVersion"], kind)).iter_errors(manifest)
    )
    assert any(message in e.message for e in errors), [e.message for e in errors]


@pytest.mark.parametrize("env", sorted(CI_VALUES))
def test_helm_lint_strict(env: str) -> None:
    result = helm("lint", "--strict", str(CHART_DIR), "--values", str(CI_VALUES[env]), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_helm_package_builds_the_archive(tmp_path: Path) -> None:
    helm("package", str(CHART_DIR), "--destination", str(tmp_path))
    version = load_yaml(CHART_DIR / "Chart.yaml")["version"]
    archive = tmp_path / f"langgraph-agent-{version}.tgz"
    assert archive.is_file()
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    for member in (
        "Chart.yaml",
        "values.yaml",
        "values.schema.json",
        "README.md",
        "templates/NOTES.txt",
    ):
        assert f"langgraph-agent/{member}" in names
    assert "langgraph-agent/.checkov.yaml" not in names
    assert {f"langgraph-agent/ci/{path.name}" for path in CI_VALUES.values()} <= names


def test_app_version_is_the_service_version() -> None:
    import agent_service

    chart = load_yaml(CHART_DIR / "Chart.yaml")
    init = (REPO_ROOT / "app" / "agent_service" / "__init__.py").read_text()
    assert chart["apiVersion"] == "v2"
    # The imported package is the one under app/ (not some installed copy), and both agree.
    assert agent_service.__file__ == str(REPO_ROOT / "app" / "agent_service" / "__init__.py")
    assert chart["appVersion"] == agent_service.__version__
    assert f'__version__ = "{chart["appVersion"]}"' in init


def _notes(env: str) -> str:
    result = helm(
        "install",
        "agent",
        str(CHART_DIR),
        "--namespace",
        "agent",
        "--dry-run=client",
        "--values",
        str(CI_VALUES[env]),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "NOTES:" in result.stdout
    return result.stdout.split("NOTES:", 1)[1]


def test_notes_tell_how_to_reach_and_check_the_release() -> None:
    canary = _notes("canary")
    assert "https://agent.example.com" in canary
    assert "kubectl -n agent get canary agent-langgraph-agent --watch" in canary
    assert "helm test agent -n agent" in canary
    assert "WARNING" not in canary
    minimal = _notes("minimal")
    assert "port-forward svc/agent-langgraph-agent 8000:80" in minimal
    assert "no credentials are mounted" in minimal
    assert "embedded SQLite file" in minimal


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.update(hostname="agent.example.com"), "Additional properties"),
        (lambda s: s["rules"][0]["matches"][0]["path"].update(type="Prefix"), "is not one of"),
        (lambda s: s["rules"][0]["backendRefs"][0].update(port="http"), "is not of type"),
        (lambda s: s["parentRefs"][0].pop("name"), "'name' is a required"),
    ],
)
def test_the_http_route_schema_is_strict(
    autoscaled: Rendered, mutate: Callable[[dict[str, Any]], object], message: str
) -> None:
    route = copy.deepcopy(autoscaled.one("HTTPRoute"))
    mutate(route["spec"])
    errors = [
        e.message
        for e in jsonschema.Draft7Validator(
            crd_schema("gateway.networking.k8s.io/v1", "HTTPRoute")
        ).iter_errors(route)
    ]
    assert any(message in error for error in errors), errors
