"""checkov (kubernetes framework) on each rendered ci/ set: zero failed checks."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.chart.support import CHART_DIR, Rendered
from tests.support.binaries import require_binary

pytestmark = [pytest.mark.helm, pytest.mark.slow]

CONFIG = CHART_DIR / ".checkov.yaml"
# The checks the chart was built to pass; a rename or a regression shows up here by id.
MUST_PASS = {
    "CKV_K8S_8",  # skipped for the test pod only; see the probe scope test
    "CKV_K8S_15",  # pull policy (digest)
    "CKV_K8S_20",  # no privilege escalation
    "CKV_K8S_22",  # read-only root filesystem
    "CKV_K8S_28",  # NET_RAW dropped
    "CKV_K8S_31",  # seccomp
    "CKV_K8S_35",  # secrets as files
    "CKV_K8S_37",  # capabilities dropped
    "CKV_K8S_38",  # no service-account token
    "CKV_K8S_40",  # uid >= 10000
    "CKV_K8S_43",  # image by digest
    "CKV2_K8S_6",  # every pod has a NetworkPolicy
} - {"CKV_K8S_8"}


@dataclass(frozen=True)
class CheckovReport:
    summary: dict[str, Any]
    passed: list[dict[str, Any]]
    failed: list[dict[str, Any]]


def run_checkov(rendered: Rendered, workdir: Path) -> CheckovReport:
    (workdir / "rendered.yaml").write_text(rendered.text)
    result = subprocess.run(
        [
            require_binary("checkov"),
            "--directory",
            str(workdir),
            "--framework",
            "kubernetes",
            "--config-file",
            str(CONFIG),
            "--output",
            "json",
            # No calls to Prisma Cloud: guidelines are not needed offline.
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=workdir,
    )
    # 0: no failures, 1: failures; anything else is a broken run.
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    (kubernetes,) = [
        r
        for r in (report if isinstance(report, list) else [report])
        if r["check_type"] == "kubernetes"
    ]
    return CheckovReport(
        summary=kubernetes["summary"],
        passed=kubernetes["results"].get("passed_checks", []),
        failed=kubernetes["results"].get("failed_checks", []),
    )


@pytest.fixture(scope="module")
def checkov_reports(
    dev: Rendered, staging: Rendered, prod: Rendered, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, CheckovReport]:
    rendered = {"dev": dev, "staging": staging, "prod": prod}
    return {
        env: run_checkov(r, tmp_path_factory.mktemp(f"checkov-{env}"))
        for env, r in rendered.items()
    }


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_zero_failed_checks(
    env: str, checkov_reports: dict[str, CheckovReport], request: pytest.FixtureRequest
) -> None:
    report = checkov_reports[env]
    rendered: Rendered = request.getfixturevalue(env)
    failures = [f"{f['check_id']} {f['check_name']} on {f['resource']}" for f in report.failed]
    assert failures == []
    assert report.summary["failed"] == 0
    assert report.summary["parsing_errors"] == 0
    # checkov saw every object (it counts pod templates as extra resources, never fewer).
    assert report.summary["resource_count"] >= len(rendered.manifests)
    passed = {p["check_id"] for p in report.passed}
    assert passed >= MUST_PASS, sorted(MUST_PASS - passed)


def test_every_skip_has_one_line_of_reason() -> None:
    lines = CONFIG.read_text().splitlines()
    skips = [i for i, line in enumerate(lines) if line.strip().startswith("- CKV")]
    assert skips
    for index in skips:
        reason = lines[index - 1].strip()
        assert reason.startswith("#"), f"no reason above {lines[index]!r}"
        assert len(reason) > 20, f"reason too short above {lines[index]!r}"
