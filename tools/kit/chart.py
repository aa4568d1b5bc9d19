"""The chart rendered by the real helm (`helm template`) and every manifest validated: built-in
kinds against the Kubernetes schemas (kubernetes-validate, strict), CRD kinds against the
schemas in charts/crd-schemas. `make plan` renders a stack's release values with it; the chart
tests render the ci/ fixtures with it."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from tools.kit.programs import REPO_ROOT, require_program

CHART_NAME = "langgraph-agent"
CHART_DIR = REPO_ROOT / "charts" / CHART_NAME
CRD_SCHEMAS = REPO_ROOT / "charts" / "crd-schemas"
# The Kubernetes version the chart's fixtures are rendered for and validated against;
# `make plan` uses each stack's own cluster version instead (kubernetes-validate ships the
# schemas of each minor version).
KUBERNETES_VERSION = "1.36.0"

Manifest = dict[str, Any]


class RenderError(RuntimeError):
    """helm refused the values; the message is helm's stderr."""


def fullname(release: str) -> str:
    """The chart's `langgraph-agent.fullname` (_helpers.tpl): the release name when it already
    contains the chart name, else `<release>-<chart>`."""
    return release if CHART_NAME in release else f"{release}-{CHART_NAME}"


@dataclass
class Rendered:
    """The objects of one `helm template` run; `schema_errors` once `validate` ran."""

    manifests: list[Manifest]
    text: str
    release: str = "agent"
    schema_errors: list[str] = field(default_factory=list)
    kubernetes_version: str = KUBERNETES_VERSION

    def all(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> Manifest:
        name = name or fullname(self.release)
        found = [m for m in self.all(kind) if m["metadata"]["name"] == name]
        if len(found) != 1:
            raise LookupError(f"expected one {kind} {name!r}, found {len(found)}: {self.names()}")
        return found[0]

    def has(self, kind: str, name: str | None = None) -> bool:
        name = name or fullname(self.release)
        return any(m["metadata"]["name"] == name for m in self.all(kind))

    def names(self) -> list[str]:
        return sorted(f"{m['kind']}/{m['metadata']['name']}" for m in self.manifests)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the pinned helm
        [require_program("helm"), *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


def render(
    values_files: Iterable[Path] = (),
    values: Mapping[str, Any] | None = None,
    *,
    release: str = "agent",
    namespace: str = "agent",
    upgrade: bool = False,
    kubernetes_version: str = KUBERNETES_VERSION,
) -> Rendered:
    """`helm template` with the values files, then `values` (as a last values file); as an
    install unless `upgrade`."""
    args = [
        "template",
        release,
        str(CHART_DIR),
        "--namespace",
        namespace,
        "--kube-version",
        kubernetes_version,
    ]
    if upgrade:
        args.append("--is-upgrade")
    for path in values_files:
        args += ["--values", str(path)]
    with tempfile.TemporaryDirectory(prefix="chart-values-") as tmp:
        if values:
            extra = Path(tmp) / "values.json"
            extra.write_text(json.dumps(values))
            args += ["--values", str(extra)]
        result = helm(*args, check=False)
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    manifests = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return Rendered(
        manifests=manifests,
        text=result.stdout,
        release=release,
        kubernetes_version=kubernetes_version,
    )


@cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    path = CRD_SCHEMAS / f"{api_version.replace('/', '_')}_{kind}.json"
    if not path.exists():
        return None
    schema: dict[str, Any] = json.loads(path.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return schema


def validate(rendered: Rendered) -> list[str]:
    """Every way a manifest breaks its schema, one line each (also kept in the Rendered)."""
    errors: list[str] = []
    for manifest in rendered.manifests:
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        schema = crd_schema(manifest["apiVersion"], manifest["kind"])
        if schema is not None:
            validator = jsonschema.Draft7Validator(schema)
            errors += [
                f"{name}: {e.message} at {list(e.path)}" for e in validator.iter_errors(manifest)
            ]
            continue
        try:
            kubernetes_validate.validate(manifest, rendered.kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{name}: {error.message} at {list(error.path)}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(
                f"{name}: no Kubernetes {rendered.kubernetes_version} schema for "
                f"{manifest['apiVersion']} {manifest['kind']} and none in {CRD_SCHEMAS.name}/"
            )
    rendered.schema_errors = errors
    return errors
