"""`python -m tools.plan <stack> [--against <stack>]` (what `make plan` runs).

Writes build/plan/<stack>/: plan.json, values.yaml, manifests.yaml, report.md; exits 1 naming
every mandatory policy violation (and any manifest Kubernetes would refuse)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from policies.evaluate import PolicyConfigError, evaluate, load_config, mandatory
from tools.kit.chart import RenderError
from tools.kit.checkov import scan
from tools.kit.programs import REPO_ROOT, MissingProgram
from tools.plan.diff import compare
from tools.plan.record import UnknownStack, policy_records, record, render_release
from tools.plan.report import plan_document, report_markdown


def build(
    stack: str,
    out: Path,
    *,
    against: str | None = None,
    overrides: dict[str, str] | None = None,
    policy_config: Path | None = None,
) -> int:
    run = record(stack, overrides)
    config = load_config(policy_config) if policy_config else None
    violations = evaluate(policy_records(run), config)
    values, rendered = render_release(run)
    checkov = scan(rendered)
    diff = compare(run, record(against)) if against else None
    document = plan_document(run, violations, rendered, checkov, diff)

    target = out / stack
    target.mkdir(parents=True, exist_ok=True)
    (target / "plan.json").write_text(json.dumps(document, indent=2, sort_keys=True, default=str))
    (target / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=True))
    (target / "manifests.yaml").write_text(rendered.text)
    (target / "report.md").write_text(report_markdown(document))

    blocking = mandatory(violations)
    print(
        f"plan {stack}: {len(run.resources)} resources, {len(violations)} policy violations "
        f"({len(blocking)} mandatory), {len(rendered.manifests)} manifests, "
        f"{len(rendered.schema_errors)} schema errors, checkov {checkov.summary.get('passed', 0)} "
        f"passed / {len(checkov.failed)} failed -> {target}/"
    )
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
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.set)
    try:
        return build(
            args.stack,
            args.out,
            against=args.against,
            overrides=overrides,
            policy_config=args.policy_config,
        )
    except (UnknownStack, RenderError, MissingProgram, PolicyConfigError) as exc:
        print(f"make plan: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
