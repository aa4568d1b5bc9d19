"""Stack level: the stack's estimated monthly cost stays within its budget.

CrossGuard hands a policy resources, not an estimate, so the estimate is made here, from the
same resources and the same estimator (`policies.estimate`) and price table that `make plan`
reports with: the figure a reviewer reads is the one the budget is judged by, and the check
runs wherever the pack runs (`make plan`, `pulumi preview --policy-pack policies`).

The budget comes from the policy's `monthlyBudgetUsd` setting. `make plan` fills it in from
the stack file's `cost.monthlyBudgetUsd`, with the enforcement level from `cost.enforce`
(advisory unless the stack sets it); a `--policy-pack-config` for `pulumi preview` carries the
same. Without a budget the policy has nothing to check.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from policies.config import PolicyConfigError, config_schema, optional_number, optional_string
from policies.estimate import Billable, Estimate, estimate, money
from policies.pricing import load_prices
from policies.props import is_list

CONTRIBUTORS = 5


def _known(value: Any) -> Any:
    """A plain copy with values unknown during a preview left out (as if unset): an unknown
    size prices as unpriced rather than stopping the whole estimate."""
    if isinstance(value, Mapping):
        known: dict[str, Any] = {}
        for key in value:
            try:
                known[str(key)] = _known(value[key])
            except UnknownValueError:
                continue
        return known
    if is_list(value):
        items = []
        for index in range(len(value)):
            try:
                items.append(_known(value[index]))
            except UnknownValueError:
                continue
        return items
    return value


def _region(resource: PolicyResource) -> str | None:
    if resource.provider is None:
        return None
    try:
        region = resource.provider.props.get("region")
    except UnknownValueError:
        return None
    return region if isinstance(region, str) else None


def billables(resources: list[PolicyResource], default_region: str) -> list[Billable]:
    """The estimator's view of the stack's resources; a resource whose provider names no region
    is in the region most providers target (else `default_region`)."""
    regions = [region for region in map(_region, resources) if region]
    fallback = Counter(regions).most_common(1)[0][0] if regions else default_region
    result = []
    for resource in resources:
        props = _known(resource.props)
        identity = props.get("id")
        result.append(
            Billable(
                urn=resource.urn,
                type=resource.resource_type,
                name=resource.name,
                props=props,
                region=_region(resource) or fallback,
                id=identity if isinstance(identity, str) else None,
            )
        )
    return result


def over_budget_message(result: Estimate, budget: float) -> str:
    contributors = ", ".join(
        f"{name} ({type_.rsplit(':', 1)[-1]}) {money(cost)}"
        for name, type_, cost in result.top(CONTRIBUTORS)
    )
    return (
        f"the estimated monthly cost {money(result.total)} exceeds the budget {money(budget)} "
        f"by {money(result.total - budget)} (on-demand list prices of {result.as_of}); the "
        f"biggest contributors: {contributors}."
    )


def _within_budget(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    budget = optional_number(config, "monthlyBudgetUsd")
    if budget is None:
        return
    day = optional_string(config, "pricingDate")
    try:
        as_of = datetime.date.fromisoformat(day) if day else datetime.date.today()
    except ValueError:
        raise PolicyConfigError(f"policy config 'pricingDate' is not a date: {day!r}") from None
    table = load_prices()
    result = estimate(billables(list(args.resources), table.default_region), table, as_of=as_of)
    if result.total > budget:
        report(over_budget_message(result, budget), None)


STACK_MONTHLY_BUDGET = StackValidationPolicy(
    name="stack-monthly-budget",
    description="The stack's estimated monthly cost (policies/prices.yaml) is within its budget.",
    # Advisory by default: an estimate from assumed usage should inform a reviewer; a stack
    # that wants a hard stop says so (`cost.enforce: true` in its stack file).
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_within_budget,
    config_schema=config_schema("monthlyBudgetUsd", "pricingDate"),
)

POLICIES = [STACK_MONTHLY_BUDGET]
