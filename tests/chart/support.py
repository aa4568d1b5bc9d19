"""Render the chart with the real helm binary and look objects up in the result."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.binaries import REPO_ROOT, require_binary

CHART_DIR = REPO_ROOT / "charts" / "langgraph-agent"
ENVS = ("minimal", "dev", "staging", "prod")
CI_VALUES = {env: CHART_DIR / "ci" / f"{env}-values.yaml" for env in ENVS}
# The Kubernetes version the renders are validated against (kubernetes-validate's schemas).
KUBERNETES_VERSION = "1.33.0"
SCHEMAS_DIR = CHART_DIR.parent / "crd-schemas"
RELEASE = "agent"
NAMESPACE = "agent"
FULLNAME = "agent-langgraph-agent"

Manifest = dict[str, Any]


class RenderError(Exception):
    """helm refused the values; the message is helm's stderr."""


@dataclass(frozen=True)
class Rendered:
    """The objects of one `helm template` run."""

    manifests: list[Manifest]
    text: str

    def all(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str, name: str = FULLNAME) -> Manifest:
        found = [m for m in self.all(kind) if m["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}: {self.names()}"
        return found[0]

    def has(self, kind: str, name: str = FULLNAME) -> bool:
        return any(m["metadata"]["name"] == name for m in self.all(kind))

    def names(self) -> list[str]:
        return sorted(f"{m['kind']}/{m['metadata']['name']}" for m in self.manifests)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("helm"), *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


def render_text(
    values_files: Iterable[Path],
    overrides: Mapping[str, Any] | None = None,
    *,
    upgrade: bool = False,
) -> str:
    """`helm template` with the values files, then the overrides (as a last values file); as
    an install unless `upgrade`."""
    args = [
        "template",
        RELEASE,
        str(CHART_DIR),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBERNETES_VERSION,
    ]
    if upgrade:
        args.append("--is-upgrade")
    for path in values_files:
        args += ["--values", str(path)]
    with tempfile.TemporaryDirectory(prefix="chart-values-") as tmp:
        if overrides:
            extra = Path(tmp) / "overrides.json"
            extra.write_text(json.dumps(overrides))
            args += ["--values", str(extra)]
        result = helm(*args, check=False)
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    return result.stdout


def render(
    values_files: Iterable[Path] = (),
    overrides: Mapping[str, Any] | None = None,
    *,
    upgrade: bool = False,
) -> Rendered:
    text = render_text(values_files, overrides, upgrade=upgrade)
    manifests = [doc for doc in yaml.safe_load_all(text) if doc]
    return Rendered(manifests=manifests, text=text)


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
