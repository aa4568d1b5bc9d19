"""A rendered chart scanned by checkov (kubernetes framework), offline: `make plan` reports its
findings to the reviewer, the chart tests require none."""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.kit.chart import CHART_DIR, Rendered, RenderError
from tools.kit.programs import require_program

CHECKOV_CONFIG = CHART_DIR / ".checkov.yaml"


@dataclass(frozen=True)
class CheckovResult:
    summary: dict[str, Any]
    passed: list[dict[str, Any]]
    failed: list[dict[str, Any]]

    def findings(self) -> list[dict[str, str]]:
        """The failed checks, each by id, name and resource."""
        return [
            {key: str(check[key]) for key in ("check_id", "check_name", "resource")}
            for check in self.failed
        ]


def scan(rendered: Rendered, config: Path | None = CHECKOV_CONFIG) -> CheckovResult:
    """checkov over the manifests, with the chart's `.checkov.yaml` unless `config` is None."""
    with tempfile.TemporaryDirectory(prefix="checkov-") as workdir:
        (Path(workdir) / "manifests.yaml").write_text(rendered.text)
        args = [
            require_program("checkov"),
            "--directory",
            workdir,
            "--framework",
            "kubernetes",
            "--output",
            "json",
            # No calls to Prisma Cloud: guidelines are not needed offline.
            "--skip-download",
        ]
        if config is not None:
            args += ["--config-file", str(config)]
        result = subprocess.run(  # noqa: S603 - the pinned checkov
            args, capture_output=True, text=True, check=False, cwd=workdir, timeout=300
        )
    # 0: no failures, 1: failures; anything else is a broken run.
    if result.returncode not in (0, 1):
        raise RenderError(f"checkov did not run: {result.stderr.strip()[-500:]}")
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    (kubernetes,) = [r for r in reports if r.get("check_type") == "kubernetes"]
    return CheckovResult(
        summary=kubernetes["summary"],
        passed=kubernetes["results"].get("passed_checks", []),
        failed=kubernetes["results"].get("failed_checks", []),
    )
