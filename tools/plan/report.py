"""Step 4: plan.json for tools and report.md for the people who review the change."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

from policies.evaluate import Violation
from tools.kit.chart import Rendered
from tools.kit.checkov import CheckovResult
from tools.plan.cost import cost_markdown
from tools.plan.diff import StackDiff
from tools.plan.offline import REDACTED, OfflineRun


def plan_document(
    run: OfflineRun,
    violations: list[Violation],
    rendered: Rendered,
    checkov: CheckovResult,
    against: StackDiff | None,
) -> dict[str, Any]:
    return {
        "stack": run.stack,
        "resources": [
            {"type": r.type, "name": r.name, "urn": r.urn, "inputs": r.inputs}
            for r in run.resources
        ],
        "resource_counts": run.count_by_type(),
        "outputs": {
            key: REDACTED if key in run.secret_outputs else value
            for key, value in run.outputs.items()
        },
        "policy": {
            "violations": [asdict(v) for v in violations],
            "mandatory": sum(v.enforcement_level == "mandatory" for v in violations),
            "advisory": sum(v.enforcement_level != "mandatory" for v in violations),
        },
        "manifests": {
            "count": len(rendered.manifests),
            "kinds": dict(sorted(Counter(m["kind"] for m in rendered.manifests).items())),
            "schema_errors": rendered.schema_errors,
        },
        "checkov": {"summary": checkov.summary, "failed": checkov.findings()},
        "against": asdict(against) if against else None,
    }


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def report_markdown(document: dict[str, Any]) -> str:
    stack = document["stack"]
    policy = document["policy"]
    checkov = document["checkov"]
    blocked = policy["mandatory"] or document["manifests"]["schema_errors"]
    verdict = (
        "BLOCKED" if blocked else ("clean" if not checkov["failed"] else "passes, with findings")
    )
    lines = [
        f"# Plan for stack `{stack}`: {verdict}",
        "",
        f"{len(document['resources'])} resources; policy pack: {policy['mandatory']} mandatory, "
        f"{policy['advisory']} advisory violations; {document['manifests']['count']} manifests, "
        f"{len(document['manifests']['schema_errors'])} schema errors; checkov: "
        f"{checkov['summary'].get('passed', 0)} passed, "
        f"{checkov['summary'].get('failed', 0)} failed.",
        "",
        "![The stack's resources by component, with their dependencies](stack.svg)",
        "",
    ]
    if document.get("cost"):
        lines += [*cost_markdown(stack, document["cost"], document.get("costAgainst")), ""]
    lines += [
        "## Resources by type",
        "",
        *_table([(t, str(n)) for t, n in document["resource_counts"].items()], ("type", "count")),
        "",
        "## Policy violations",
        "",
    ]
    if policy["violations"]:
        lines += _table(
            [
                (
                    v["enforcement_level"],
                    v["policy"],
                    v["urn"].rsplit("::", 1)[-1] or "(stack)",
                    v["message"],
                )
                for v in policy["violations"]
            ],
            ("level", "policy", "resource", "message"),
        )
    else:
        lines.append("None.")
    lines += ["", "## Manifests", ""]
    lines += _table(
        [(k, str(n)) for k, n in document["manifests"]["kinds"].items()], ("kind", "count")
    )
    for error in document["manifests"]["schema_errors"]:
        lines.append(f"- schema error: {error}")
    lines += ["", "## checkov findings", ""]
    if checkov["failed"]:
        lines += _table(
            [(f["check_id"], f["check_name"], f["resource"]) for f in checkov["failed"]],
            ("check", "name", "resource"),
        )
    else:
        lines.append(f"None failed ({checkov['summary'].get('passed', 0)} checks passed).")
    against = document.get("against")
    if against:
        lines += ["", f"## Differences: `{against['base']}` against `{against['other']}`", ""]
        lines += [f"- only in {against['base']}: `{k}`" for k in against["only_in_base"]]
        lines += [f"- only in {against['other']}: `{k}`" for k in against["only_in_other"]]
        for resource, changes in against["changed"].items():
            lines.append(f"- `{resource}`")
            lines += [f"  - {change}" for change in changes]
        if against["values"]:
            lines += ["", "### Release values", ""]
            lines += [f"- {change}" for change in against["values"]]
    return "\n".join(lines) + "\n"
