"""Step 3: the chart rendered by the real helm with exactly the release's values, each
manifest validated against the Kubernetes schemas (CRD kinds against charts/crd-schemas),
then scanned by checkov."""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from infra.local.programs import require_program
from infra.offline import REPO_ROOT

CHART_DIR = REPO_ROOT / "charts" / "langgraph-agent"
CRD_SCHEMAS = REPO_ROOT / "charts" / "crd-schemas"
CHECKOV_CONFIG = CHART_DIR / ".checkov.yaml"
KUBERNETES_VERSION = "1.33.0"


class RenderError(RuntimeError):
    pass


@dataclass
class Rendered:
    text: str
    manifests: list[dict[str, Any]]
    schema_errors: list[str] = field(default_factory=list)


@dataclass
class CheckovResult:
    summary: dict[str, Any]
    failed: list[dict[str, str]]


def render(values: dict[str, Any], release: str, namespace: str) -> Rendered:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as values_file:
        yaml.safe_dump(values, values_file)
        values_file.flush()
        result = subprocess.run(  # noqa: S603 - the pinned helm
            [
                require_program("helm"),
                "template",
                release,
                str(CHART_DIR),
                "--namespace",
                namespace,
                "--values",
                values_file.name,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise RenderError(f"helm template refused the release's values: {result.stderr.strip()}")
    manifests = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return Rendered(text=result.stdout, manifests=manifests)


@cache
def _crd_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    path = CRD_SCHEMAS / f"{api_version.replace('/', '_')}_{kind}.json"
    if not path.exists():
        return None
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def validate(rendered: Rendered) -> list[str]:
    errors: list[str] = []
    for manifest in rendered.manifests:
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        schema = _crd_schema(manifest["apiVersion"], manifest["kind"])
        if schema is not None:
            validator = jsonschema.Draft7Validator(schema)
            errors += [
                f"{name}: {e.message} at {list(e.path)}" for e in validator.iter_errors(manifest)
            ]
            continue
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{name}: {error.message} at {list(error.path)}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{name}: no schema for {manifest['apiVersion']} {manifest['kind']}")
    rendered.schema_errors = errors
    return errors


def scan(rendered: Rendered) -> CheckovResult:
    with tempfile.TemporaryDirectory() as workdir:
        (Path(workdir) / "manifests.yaml").write_text(rendered.text)
        result = subprocess.run(  # noqa: S603 - the pinned checkov
            [
                require_program("checkov"),
                "--directory",
                workdir,
                "--framework",
                "kubernetes",
                "--config-file",
                str(CHECKOV_CONFIG),
                "--output",
                "json",
                "--skip-download",
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=workdir,
        )
    if result.returncode not in (0, 1):
        raise RenderError(f"checkov did not run: {result.stderr.strip()[-500:]}")
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    kubernetes = next(r for r in reports if r.get("check_type") == "kubernetes")
    failed = [
        {
            "check_id": check["check_id"],
            "check_name": check["check_name"],
            "resource": check["resource"],
        }
        for check in kubernetes["results"].get("failed_checks", [])
    ]
    return CheckovResult(summary=kubernetes["summary"], failed=failed)
