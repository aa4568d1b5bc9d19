"""checkov (kubernetes framework) on each rendered ci/ set: zero failed checks, and the skips in
.checkov.yaml hit nothing but what their reasons name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.chart.support import ENVS, FULLNAME, NAMESPACE, Rendered, fixture_name
from tools.kit.checkov import CHECKOV_CONFIG, scan
from tools.kit.checkov import CheckovResult as CheckovReport

pytestmark = [pytest.mark.helm, pytest.mark.slow]

CONFIG = CHECKOV_CONFIG
# The checks the chart was built to pass; a rename or a regression shows up here by id.
MUST_PASS = {
    "CKV_K8S_15",  # pull policy (digest)
    "CKV_K8S_20",  # no privilege escalation
    "CKV_K8S_22",  # read-only root filesystem
    "CKV_K8S_23",  # no root containers
    "CKV_K8S_28",  # NET_RAW dropped
    "CKV_K8S_31",  # seccomp
    "CKV_K8S_35",  # secrets as files
    "CKV_K8S_37",  # capabilities dropped
    "CKV_K8S_38",  # no service-account token
    "CKV_K8S_43",  # image by digest
    "CKV2_K8S_6",  # every pod has a NetworkPolicy
}
# What each skip may hit when checkov runs without the config (kind.namespace.name); None: any.
TEST_POD = f"Pod.{NAMESPACE}.{FULLNAME}-test-ready"
SKIP_SCOPE = {
    "CKV_K8S_8": {TEST_POD},  # liveness: the one-shot test pod
    "CKV_K8S_9": {TEST_POD},  # readiness: the one-shot test pod
}


def run_checkov(rendered: Rendered, *, config: Path | None = CONFIG) -> CheckovReport:
    return scan(rendered, config)


@pytest.fixture(scope="module")
def checkov_reports(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, CheckovReport]:
    return {env: run_checkov(request.getfixturevalue(fixture_name(env))) for env in ENVS}


@pytest.mark.parametrize("env", ENVS)
def test_zero_failed_checks(
    env: str, checkov_reports: dict[str, CheckovReport], request: pytest.FixtureRequest
) -> None:
    report = checkov_reports[env]
    rendered: Rendered = request.getfixturevalue(fixture_name(env))
    failures = [f"{f['check_id']} {f['check_name']} on {f['resource']}" for f in report.failed]
    assert failures == []
    assert report.summary["failed"] == 0
    assert report.summary["parsing_errors"] == 0
    # checkov saw every object (it counts pod templates as extra resources, never fewer).
    assert report.summary["resource_count"] >= len(rendered.manifests)
    passed = {p["check_id"] for p in report.passed}
    assert passed >= MUST_PASS, sorted(MUST_PASS - passed)


def test_skips_are_the_scoped_ones_each_with_one_line_of_reason() -> None:
    lines = CONFIG.read_text().splitlines()
    skips = [i for i, line in enumerate(lines) if line.strip().startswith("- CKV")]
    for index in skips:
        reason = lines[index - 1].strip()
        assert reason.startswith("#"), f"no reason above {lines[index]!r}"
        assert len(reason) > 20, f"reason too short above {lines[index]!r}"
    assert set(yaml.safe_load(CONFIG.read_text())["skip-check"]) == set(SKIP_SCOPE)


def test_without_the_skips_only_the_scoped_resources_fail(canary: Rendered, tmp_path: Path) -> None:
    """The skips hide nothing else: checkov without the config fails exactly the skipped checks,
    and the probe checks only on the test pod."""
    report = run_checkov(canary, config=None)
    hits: dict[str, set[str]] = {}
    for failure in report.failed:
        hits.setdefault(failure["check_id"], set()).add(failure["resource"])
    assert set(hits) == set(SKIP_SCOPE)
    for check, scope in SKIP_SCOPE.items():
        if scope is not None:
            assert hits[check] == scope, check
