"""Step 3: what the stack costs a month, per resource and per component, and against another
stack, from the recorded resources and the price table (the estimator the budget policy uses)."""

from __future__ import annotations

import datetime
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from policies.estimate import Billable, Estimate, estimate, money
from policies.pricing import PriceTable, load_prices
from tools.plan.diff import normalise
from tools.plan.offline import OfflineRun, RecordedResource

STACK_TYPE = "pulumi:pulumi:Stack"
NO_COMPONENT = "(stack)"
TOP = 5


def _provider_urn(reference: str) -> str:
    return reference.rsplit("::", 1)[0] if reference else ""


def component_of(run: OfflineRun) -> dict[str, str]:
    """Each resource's top-level component (the ComponentResource right under the stack), named
    by its type's module: `agent-platform:network:Network` -> `network`."""
    by_urn = {resource.urn: resource for resource in run.resources}
    labels: dict[str, str] = {}
    for resource in run.resources:
        top: RecordedResource | None = None
        parent = by_urn.get(resource.parent)
        while parent is not None:
            if not parent.custom:
                top = parent
            parent = by_urn.get(parent.parent)
        if top is None and not resource.custom and not resource.type.startswith("pulumi:"):
            top = resource
        labels[resource.urn] = component_label(top) if top else NO_COMPONENT
    return labels


def component_label(resource: RecordedResource) -> str:
    parts = resource.type.split(":")
    return parts[1] if len(parts) == 3 else resource.type


def billables(run: OfflineRun, default_region: str) -> list[Billable]:
    by_urn = {resource.urn: resource for resource in run.resources}

    def region_of(resource: RecordedResource) -> str | None:
        provider = by_urn.get(_provider_urn(resource.provider))
        region = provider.inputs.get("region") if provider else None
        return region if isinstance(region, str) else None

    regions = [region for region in map(region_of, run.resources) if region]
    fallback = Counter(regions).most_common(1)[0][0] if regions else default_region
    return [
        Billable(
            urn=resource.urn,
            type=resource.type,
            name=resource.name,
            props=resource.inputs,
            region=region_of(resource) or fallback,
            id=resource.id or None,
            custom=resource.custom,
        )
        for resource in run.resources
    ]


def estimate_run(
    run: OfflineRun, as_of: datetime.date, table: PriceTable | None = None
) -> Estimate:
    table = table or load_prices()
    return estimate(billables(run, table.default_region), table, as_of=as_of)


def _round(amount: float) -> float:
    return round(amount, 2)


def cost_document(
    run: OfflineRun,
    result: Estimate,
    budget: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `cost` block of plan.json."""
    components = component_of(run)
    per_resource: dict[str, dict[str, Any]] = {}
    for line in result.lines:
        entry = per_resource.setdefault(
            line.urn,
            {
                "name": line.name,
                "type": line.type,
                "component": components.get(line.urn, NO_COMPONENT),
                "monthly": 0.0,
                "low": 0.0,
                "high": 0.0,
                "lines": [],
            },
        )
        entry["monthly"] += line.monthly
        entry["low"] += line.low
        entry["high"] += line.high
        entry["lines"].append(
            {
                "item": line.item,
                "quantity": _round(line.quantity),
                "unit": line.price.per,
                "unitUsd": line.price.usd,
                "monthly": _round(line.monthly),
                "price": line.price.key,
                "source": line.price.source,
                "evidence": line.price.evidence,
                "taken": line.price.taken.isoformat(),
            }
        )
    by_component: dict[str, dict[str, float]] = defaultdict(
        lambda: {"monthly": 0.0, "low": 0.0, "high": 0.0}
    )
    for entry in per_resource.values():
        for key in ("monthly", "low", "high"):
            entry[key] = _round(entry[key])
            by_component[entry["component"]][key] += entry[key]
    resources = sorted(per_resource.values(), key=lambda e: (-e["monthly"], e["name"]))
    return {
        "currency": "USD",
        "asOf": result.as_of.isoformat(),
        "total": _round(result.total),
        "low": _round(result.low),
        "high": _round(result.high),
        "budget": dict(budget) if budget else None,
        "top": [
            {"name": name, "type": type_, "monthly": _round(cost)}
            for name, type_, cost in result.top(TOP)
        ],
        "components": {
            name: {key: _round(value) for key, value in sums.items()}
            for name, sums in sorted(by_component.items(), key=lambda item: -item[1]["monthly"])
        },
        "resources": resources,
        "unpriced": [
            {
                "name": item.name,
                "type": item.type,
                "component": components.get(item.urn, NO_COMPONENT),
                "reason": item.reason,
            }
            for item in result.unpriced
        ],
        "free": result.free,
        "bounds": [
            {
                "kind": bound.kind,
                "name": bound.name,
                "min": bound.minimum,
                "expected": bound.expected,
                "max": bound.maximum,
                "detail": bound.detail,
            }
            for bound in result.bounds
        ],
        "assumptions": result.assumptions,
    }


def cost_difference(
    base_stack: str, base: Mapping[str, Any], other_stack: str, other: Mapping[str, Any]
) -> dict[str, Any]:
    """`base` minus `other`: totals, components and resources (names with the stack replaced
    by `<stack>`, as the resource diff keys them)."""

    def keyed(stack: str, document: Mapping[str, Any]) -> dict[str, float]:
        return {
            f"{entry['type']}::{normalise(entry['name'], stack)}": entry["monthly"]
            for entry in document["resources"]
        }

    left, right = keyed(base_stack, base), keyed(other_stack, other)
    resources: list[dict[str, Any]] = [
        {
            "resource": key,
            base_stack: left.get(key, 0.0),
            other_stack: right.get(key, 0.0),
            "difference": _round(left.get(key, 0.0) - right.get(key, 0.0)),
        }
        for key in sorted(set(left) | set(right))
        if _round(left.get(key, 0.0) - right.get(key, 0.0)) != 0
    ]
    resources.sort(key=lambda entry: -abs(entry["difference"]))
    names = sorted(set(base["components"]) | set(other["components"]))
    return {
        "base": base_stack,
        "other": other_stack,
        "total": {
            base_stack: base["total"],
            other_stack: other["total"],
            "difference": _round(base["total"] - other["total"]),
        },
        # The same at the autoscaling minimums and maximums.
        "low": {
            base_stack: base["low"],
            other_stack: other["low"],
            "difference": _round(base["low"] - other["low"]),
        },
        "high": {
            base_stack: base["high"],
            other_stack: other["high"],
            "difference": _round(base["high"] - other["high"]),
        },
        "bounds": {base_stack: base["bounds"], other_stack: other["bounds"]},
        "top": {base_stack: base["top"], other_stack: other["top"]},
        "components": {
            name: {
                base_stack: base["components"].get(name, {}).get("monthly", 0.0),
                other_stack: other["components"].get(name, {}).get("monthly", 0.0),
                "difference": _round(
                    base["components"].get(name, {}).get("monthly", 0.0)
                    - other["components"].get(name, {}).get("monthly", 0.0)
                ),
            }
            for name in names
        },
        "resources": resources,
    }


def _signed(amount: float) -> str:
    return ("+" if amount > 0 else "-" if amount < 0 else "±") + money(abs(amount))


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def cost_markdown(
    stack: str, cost: Mapping[str, Any], difference: Mapping[str, Any] | None
) -> list[str]:
    lines = [
        "## Cost",
        "",
        f"**{money(cost['total'])} a month** at the expected size "
        f"(range {money(cost['low'])} at the autoscaling minimums to {money(cost['high'])} at "
        f"the maximums), on-demand list prices of {cost['asOf']} from `policies/prices.yaml`.",
    ]
    budget = cost.get("budget")
    if budget:
        state = "OVER" if cost["total"] > budget["monthlyUsd"] else "within"
        lines.append(
            f"Budget {money(budget['monthlyUsd'])} ({budget['enforcement']}): {state} budget."
        )
    else:
        lines.append("No budget set (`agent-platform:cost.monthlyBudgetUsd` in the stack file).")
    lines += ["", "Top five:", ""]
    lines += [
        f"{index}. `{item['name']}` ({item['type'].rsplit(':', 1)[-1]}): {money(item['monthly'])}"
        for index, item in enumerate(cost["top"], start=1)
    ]
    lines += ["", "### Per component", ""]
    lines += _table(
        [
            (name, money(sums["monthly"]), f"{money(sums['low'])} - {money(sums['high'])}")
            for name, sums in cost["components"].items()
        ],
        ("component", "monthly", "range"),
    )
    if difference:
        base, other = difference["base"], difference["other"]
        total = difference["total"]
        lines += [
            "",
            f"### Cost against `{other}`",
            "",
            f"`{base}` {money(total[base])} a month, `{other}` {money(total[other])}: "
            f"**{_signed(total['difference'])}**.",
            "",
        ]
        lines += _table(
            [
                (
                    label,
                    money(difference[key][base]),
                    money(difference[key][other]),
                    _signed(difference[key]["difference"]),
                )
                for label, key in (
                    ("autoscaling minimums", "low"),
                    ("expected", "total"),
                    ("autoscaling maximums", "high"),
                )
            ],
            ("size", base, other, "difference"),
        )
        lines += ["", f"Autoscaling bounds of `{other}`:", ""]
        lines += [
            f"- {b['kind']} `{b['name']}`: {b['min']} / {b['expected']} / {b['max']}"
            for b in difference["bounds"][other]
        ]
        lines.append("")
        lines += _table(
            [
                (name, money(row[base]), money(row[other]), _signed(row["difference"]))
                for name, row in difference["components"].items()
            ],
            ("component", base, other, "difference"),
        )
        lines += ["", f"Top five of `{other}`:", ""]
        lines += [
            f"{index}. `{item['name']}` ({item['type'].rsplit(':', 1)[-1]}): "
            f"{money(item['monthly'])}"
            for index, item in enumerate(difference["top"][other], start=1)
        ]
        lines += ["", "Largest differences by resource:", ""]
        lines += _table(
            [
                (
                    f"`{row['resource']}`",
                    money(row[base]),
                    money(row[other]),
                    _signed(row["difference"]),
                )
                for row in difference["resources"][:15]
            ],
            ("resource", base, other, "difference"),
        )
    lines += ["", "### Autoscaling bounds", ""]
    lines += _table(
        [
            (
                b["kind"],
                f"`{b['name']}`",
                str(b["min"]),
                str(b["expected"]),
                str(b["max"]),
                b["detail"],
            )
            for b in cost["bounds"]
        ],
        ("what", "name", "min", "expected", "max", "detail"),
    )
    lines += ["", "### Per resource", ""]
    rows: list[tuple[str, ...]] = []
    for entry in cost["resources"]:
        for item in entry["lines"]:
            unverified = "" if item["evidence"] else " (check)"
            rows.append(
                (
                    str(entry["component"]),
                    f"`{entry['name']}`",
                    str(item["item"]),
                    f"{item['quantity']:g} {item['unit']} x ${item['unitUsd']:g}{unverified}",
                    money(item["monthly"]),
                )
            )
    lines += _table(rows, ("component", "resource", "item", "quantity x unit price", "monthly"))
    lines += ["", "### Prices used", ""]
    used: dict[str, dict[str, Any]] = {}
    for entry in cost["resources"]:
        for item in entry["lines"]:
            used.setdefault(item["price"], item)
    lines += _table(
        [
            (
                f"`{key}`",
                f"${item['unitUsd']:g} per {item['unit']}",
                item["taken"],
                item["source"],
                item["evidence"] or "not verifiable offline: check",
            )
            for key, item in sorted(used.items())
        ],
        ("price", "unit price", "taken", "source", "published at"),
    )
    lines += ["", "### Unpriced", ""]
    if cost["unpriced"]:
        lines += [
            f"- `{item['name']}` ({item['type']}): {item['reason']}" for item in cost["unpriced"]
        ]
    else:
        lines.append("Nothing: every resource is priced or free of charge.")
    lines += [
        f"- {cost['free']} resources carry no charge of their own (configuration, identity, "
        "routing, Kubernetes objects).",
        "",
        "### Assumptions",
        "",
        "Node groups at their desired size for the monthly figure; storage as allocated. "
        "Prices marked (check) were not verifiable offline; see each row's source. "
        "Usage assumed:",
        "",
    ]
    lines += [f"- `{key}`: {value}" for key, value in cost["assumptions"].items()]
    return lines
