"""`python -m tools.plan <stack> [--against <stack>]` (what `make plan` runs).

Writes build/plan/<stack>/: plan.json, values.yaml, manifests.yaml, stack.svg, report.md and the
policy-config.json the pack ran with; exits 1 naming every mandatory policy violation (and any
manifest Kubernetes would refuse), the budget among them when the stack enforces it."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from infra.config import StackConfigError
from policies.estimate import money
from policies.evaluate import PolicyConfigError, evaluate, load_config, mandatory
from policies.pricing import PriceTableError
from tools.kit.chart import RenderError
from tools.kit.checkov import scan
from tools.kit.programs import REPO_ROOT, MissingProgram
from tools.plan.budget import stack_budget, with_budget
from tools.plan.cost import cost_difference, cost_document, estimate_run
from tools.plan.diff import compare
from tools.plan.graph import GraphError, dot_source, material_changes, render_svg
from tools.plan.offline import OfflineRun
from tools.plan.record import UnknownStack, policy_records, record, render_release
from tools.plan.report import plan_document, report_markdown


def _cost_against(
    run: OfflineRun, cost: Mapping[str, Any], other: OfflineRun, as_of: datetime.date
) -> dict[str, Any]:
    other_cost = cost_document(other, estimate_run(other, as_of))
    return cost_difference(run.stack, cost, other.stack, other_cost)


def build(
    stack: str,
    out: Path,
    *,
    against: str | None = None,
    overrides: dict[str, str] | None = None,
    policy_config: Path | None = None,
    as_of: datetime.date | None = None,
) -> int:
    as_of = as_of or datetime.date.today()
    run = record(stack, overrides)
    budget = stack_budget(stack, overrides)
    config = with_budget(load_config(policy_config) if policy_config else None, budget, as_of)
    violations = evaluate(policy_records(run), config)
    values, rendered = render_release(run)
    checkov = scan(rendered)
    other = record(against) if against else None
    diff = compare(run, other) if other else None
    result = estimate_run(run, as_of)
    cost = cost_document(run, result, budget)
    cost_diff = _cost_against(run, cost, other, as_of) if other else None
    svg = render_svg(
        dot_source(
            run,
            added=diff.only_in_base if diff else (),
            changed=material_changes(run, other) if other else (),
            costs=result.by_resource(),
            against=against,
        )
    )
    document = plan_document(run, violations, rendered, checkov, diff)
    document["cost"] = cost
    document["costAgainst"] = cost_diff

    target = out / stack
    target.mkdir(parents=True, exist_ok=True)
    (target / "plan.json").write_text(json.dumps(document, indent=2, sort_keys=True, default=str))
    (target / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=True))
    (target / "manifests.yaml").write_text(rendered.text)
    (target / "stack.svg").write_text(svg)
    # What `pulumi preview --policy-pack policies --policy-pack-config <this>` needs to judge
    # the same budget the same way.
    (target / "policy-config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    (target / "report.md").write_text(report_markdown(document))

    blocking = mandatory(violations)
    print(
        f"plan {stack}: {len(run.resources)} resources, {len(violations)} policy violations "
        f"({len(blocking)} mandatory), {len(rendered.manifests)} manifests, "
        f"{len(rendered.schema_errors)} schema errors, checkov {checkov.summary.get('passed', 0)} "
        f"passed / {len(checkov.failed)} failed -> {target}/"
    )
    top = ", ".join(f"{item['name']} {money(item['monthly'])}" for item in cost["top"])
    print(
        f"plan {stack}: cost {money(cost['total'])}/month "
        f"({money(cost['low'])}-{money(cost['high'])})"
        + (f", budget {money(budget['monthlyUsd'])}" if budget else ", no budget")
        + f"; top: {top}"
    )
    if cost_diff:
        totals = cost_diff["total"]
        print(
            f"plan {stack}: against {against} {money(totals[against])}/month: difference "
            f"{'+' if totals['difference'] >= 0 else '-'}{money(abs(totals['difference']))}; "
            f"{against} top: "
            + ", ".join(f"{t['name']} {money(t['monthly'])}" for t in cost_diff["top"][against])
        )
    for item in cost["unpriced"]:
        print(f"plan {stack}: UNPRICED {item['name']} ({item['type']}): {item['reason']}")
    for violation in blocking:
        print(f"plan {stack}: MANDATORY {violation.policy}: {violation.message}", file=sys.stderr)
    for error in rendered.schema_errors:
        print(f"plan {stack}: SCHEMA {error}", file=sys.stderr)
    for failed in checkov.failed:
        print(f"plan {stack}: checkov {failed['check_id']} {failed['resource']}", file=sys.stderr)
    # checkov findings are for the reviewer (e.g. a tag where a digest is wanted); what blocks
    # `pulumi up` is what the policy pack blocks, and manifests Kubernetes would refuse.
    return 1 if blocking or rendered.schema_errors else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.plan")
    parser.add_argument("stack", help="dev, staging, prod: a Pulumi.<stack>.yaml")
    parser.add_argument("--against", help="another stack to compare with")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "plan")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a stack config value (as `pulumi config set` would), e.g. to try a change",
    )
    parser.add_argument("--policy-config", type=Path, help="policy pack config JSON")
    parser.add_argument(
        "--pricing-date",
        type=datetime.date.fromisoformat,
        help="the day whose prices apply (YYYY-MM-DD; default today), e.g. EKS support windows",
    )
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.set)
    try:
        return build(
            args.stack,
            args.out,
            against=args.against,
            overrides=overrides,
            policy_config=args.policy_config,
            as_of=args.pricing_date,
        )
    except (
        UnknownStack,
        RenderError,
        MissingProgram,
        PolicyConfigError,
        PriceTableError,
        StackConfigError,
        GraphError,
    ) as exc:
        print(f"make plan: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
