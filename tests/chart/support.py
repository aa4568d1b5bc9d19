"""The chart tests' view of the kit's renderer: release `agent`, the ci/ fixtures by shape."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tools.kit import chart
from tools.kit.chart import (
    CHART_DIR,
    CRD_SCHEMAS,
    KUBERNETES_VERSION,
    Rendered,
    RenderError,
    fullname,
    helm,
)

__all__ = ["CHART_DIR", "KUBERNETES_VERSION", "RenderError", "Rendered", "helm"]

# The ci/ fixtures, named by the shape of release they describe (not by stack: the stacks'
# real values are what `make plan` renders, see tests/infra/test_chart_contract.py).
ENVS = ("minimal", "existing-secret", "autoscaled", "canary")
CI_VALUES = {env: CHART_DIR / "ci" / f"{env}-values.yaml" for env in ENVS}


def fixture_name(env: str) -> str:
    """The session fixture (conftest.py) holding the render of `env`'s ci/ file."""
    return env.replace("-", "_")


SCHEMAS_DIR = CRD_SCHEMAS
RELEASE = "agent"
NAMESPACE = "agent"
FULLNAME = fullname(RELEASE)

Manifest = dict[str, Any]


def render(
    values_files: Iterable[Path] = (),
    overrides: Mapping[str, Any] | None = None,
    *,
    upgrade: bool = False,
) -> Rendered:
    """`helm template` of release `agent` in namespace `agent`: the values files, then the
    overrides; as an install unless `upgrade`."""
    return chart.render(
        values_files, overrides, release=RELEASE, namespace=NAMESPACE, upgrade=upgrade
    )


def render_env(
    env: str, overrides: Mapping[str, Any] | None = None, *, upgrade: bool = False
) -> Rendered:
    return render([CI_VALUES[env]], overrides, upgrade=upgrade)


def is_hook(manifest: Manifest) -> bool:
    return "helm.sh/hook" in (manifest["metadata"].get("annotations") or {})


def containers(pod_owner: Manifest) -> list[Manifest]:
    """The containers of a Deployment, Job, CronJob or Pod."""
    spec = pod_spec(pod_owner)
    result: list[Manifest] = spec["containers"]
    return result


def pod_spec(pod_owner: Manifest) -> Manifest:
    kind = pod_owner["kind"]
    spec: Manifest
    if kind == "Pod":
        spec = pod_owner["spec"]
    elif kind == "CronJob":
        spec = pod_owner["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    else:
        spec = pod_owner["spec"]["template"]["spec"]
    return spec


def pod_labels(pod_owner: Manifest) -> dict[str, str]:
    kind = pod_owner["kind"]
    labels: dict[str, str]
    if kind == "Pod":
        labels = pod_owner["metadata"]["labels"]
    elif kind == "CronJob":
        labels = pod_owner["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    else:
        labels = pod_owner["spec"]["template"]["metadata"]["labels"]
    return labels


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
