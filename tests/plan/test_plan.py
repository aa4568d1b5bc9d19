"""`make plan`: the offline review bundle, clean for prod, failing by name when a change
breaks a mandatory rule."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from tools.plan.__main__ import build, main
from tools.plan.offline import stack_config_values

pytestmark = [pytest.mark.slow, pytest.mark.helm]


@pytest.fixture(scope="module")
def prod_plan(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("plan")
    return build("prod", out, against="dev", as_of=DAY), out / "prod"


DAY = datetime.date(2026, 11, 30)


def test_a_clean_prod_plan_writes_the_bundle(prod_plan: tuple[int, Path]) -> None:
    code, bundle = prod_plan
    assert code == 0
    assert {p.name for p in bundle.iterdir()} == {
        "plan.json",
        "values.yaml",
        "manifests.yaml",
        "stack.svg",
        "report.md",
        "policy-config.json",
    }
    plan: dict[str, Any] = json.loads((bundle / "plan.json").read_text())
    assert plan["stack"] == "prod"
    assert plan["policy"]["mandatory"] == 0
    # H4: the edge no longer installs the retired ingress-nginx; nothing is even advised.
    assert plan["policy"]["violations"] == []
    assert len(plan["resources"]) == sum(plan["resource_counts"].values()) > 100
    assert plan["manifests"]["schema_errors"] == []
    assert {"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Canary"} <= set(
        plan["manifests"]["kinds"]
    )
    assert plan["checkov"]["summary"]["passed"] > 100
    report = (bundle / "report.md").read_text()
    for section in (
        "## Cost",
        "## Resources by type",
        "## Policy violations",
        "## checkov findings",
    ):
        assert section in report
    # Reviewers look before they read: the picture comes first.
    assert report.index("](stack.svg)") < report.index("## Cost")


def test_the_bundle_carries_the_cost_and_its_difference(prod_plan: tuple[int, Path]) -> None:
    _, bundle = prod_plan
    plan = json.loads((bundle / "plan.json").read_text())
    cost, against = plan["cost"], plan["costAgainst"]
    assert cost["asOf"] == "2026-11-30"
    assert cost["low"] <= cost["total"] < cost["high"]
    assert cost["budget"] == {"monthlyUsd": cost["budget"]["monthlyUsd"], "enforcement": "advisory"}
    assert len(cost["top"]) == 5
    assert {bound["kind"] for bound in cost["bounds"]} == {"node group", "service pods (HPA)"}
    assert against["total"]["prod"] == cost["total"]
    assert against["total"]["difference"] == pytest.approx(
        cost["total"] - against["total"]["dev"], abs=0.01
    )
    report = (bundle / "report.md").read_text()
    assert "### Cost against `dev`" in report
    assert "Top five of `dev`:" in report
    assert "### Autoscaling bounds" in report
    assert "### Assumptions" in report
    assert "| `eu-west-1/eks/cluster-standard-support` | $0.1 per hour | 2026-11-30 |" in report
    svg = (bundle / "stack.svg").read_text()
    assert "stack prod against dev" in svg
    # The same budget for `pulumi preview --policy-pack-config`.
    policy_config = json.loads((bundle / "policy-config.json").read_text())
    assert policy_config["stack-monthly-budget"] == {
        "enforcementLevel": "advisory",
        "monthlyBudgetUsd": cost["budget"]["monthlyUsd"],
        "pricingDate": "2026-11-30",
    }


def test_against_another_stack_lists_the_differences(prod_plan: tuple[int, Path]) -> None:
    _, bundle = prod_plan
    against = json.loads((bundle / "plan.json").read_text())["against"]
    assert (against["base"], against["other"]) == ("prod", "dev")
    # prod has a NAT gateway per AZ, dev one; prod a replica bucket for its dumps, dev none.
    assert any("natGateway:NatGateway" in key for key in against["only_in_base"])
    assert any("backups-replica" in key for key in against["only_in_base"])
    assert any(line.startswith("replicaCount: prod=") for line in against["values"])
    assert "## Differences: `prod` against `dev`" in (bundle / "report.md").read_text()


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_every_other_stack_plans_clean(stack: str, tmp_path: Path) -> None:
    """B4: every stack's `make plan` is green, not only prod's (staging once failed its own
    kubernetes-resources-set)."""
    assert build(stack, tmp_path) == 0
    plan = json.loads((tmp_path / stack / "plan.json").read_text())
    assert plan["policy"]["mandatory"] == 0
    assert plan["policy"]["violations"] == []
    assert plan["manifests"]["schema_errors"] == []


def test_no_secret_value_leaves_the_run(prod_plan: tuple[int, Path]) -> None:
    _, bundle = prod_plan
    text = "".join(p.read_text() for p in bundle.iterdir())
    plan = json.loads((bundle / "plan.json").read_text())
    assert plan["outputs"]["kubeconfig"] == "[secret]"
    redis_users = [r for r in plan["resources"] if r["type"] == "aws:elasticache/user:User"]
    assert len(redis_users) == 2
    assert all(u["inputs"]["authenticationMode"] == "[secret]" for u in redis_users)
    assert "BEGIN" not in text  # no certificate or key material


def test_a_broken_change_fails_naming_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values, _ = stack_config_values("prod")
    database = json.loads(values["agent-platform:database"])
    database.update({"backupRetentionDays": 1, "deletionProtection": False})
    code = build("prod", tmp_path, overrides={"agent-platform:database": json.dumps(database)})
    assert code == 1
    errors = capsys.readouterr().err
    assert "MANDATORY rds-backup-retention" in errors
    assert "MANDATORY rds-deletion-protection-in-production" in errors
    report = (tmp_path / "prod" / "report.md").read_text()
    assert report.startswith("# Plan for stack `prod`: BLOCKED")


def _with_budget(usd: float, **extra: object) -> dict[str, str]:
    return {"agent-platform:cost": json.dumps({"monthlyBudgetUsd": usd, **extra})}


def test_an_over_budget_stack_is_reported_naming_its_contributors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = build("dev", tmp_path, overrides=_with_budget(100), as_of=DAY)
    assert code == 0  # advisory: the reviewer is told, the plan is not blocked
    plan = json.loads((tmp_path / "dev" / "plan.json").read_text())
    found = [v for v in plan["policy"]["violations"] if v["policy"] == "stack-monthly-budget"]
    assert [v["enforcement_level"] for v in found] == ["advisory"]
    assert "exceeds the budget $100" in found[0]["message"]
    assert "agent-dev-eks (Cluster)" in found[0]["message"]
    assert "OVER budget" in (tmp_path / "dev" / "report.md").read_text()


def test_an_enforced_budget_blocks_the_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = build("dev", tmp_path, overrides=_with_budget(100, enforce=True), as_of=DAY)
    assert code == 1
    errors = capsys.readouterr().err
    assert "MANDATORY stack-monthly-budget: the estimated monthly cost" in errors
    assert "the biggest contributors: agent-dev-general (NodeGroup)" in errors


def test_a_bad_budget_names_the_key_and_the_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "--set", 'agent-platform:cost={"monthlyBudgetUsd": -1}']) == 2
    error = capsys.readouterr().err
    assert "Pulumi.dev.yaml: agent-platform:cost.monthlyBudgetUsd is invalid" in error


def test_an_unknown_stack_names_the_stack_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["qa"]) == 2
    assert "no stack 'qa': the stack files are Pulumi.dev.yaml" in capsys.readouterr().err
