"""The stack file's budget as the policy pack reads it: `make plan` evaluates the pack with it
and `make deploy` hands it to `pulumi up --policy-pack-config`, so a budget is judged the same
way offline and for real."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra.config import parse_stack_config
from tools.plan.offline import stack_config_values

BUDGET_POLICY = "stack-monthly-budget"


def stack_budget(stack: str, overrides: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The stack file's `cost` block (validated with the rest of the stack config)."""
    values, _ = stack_config_values(stack)
    config = parse_stack_config(stack, {**values, **(overrides or {})})
    if config.cost is None:
        return None
    return {
        "monthlyUsd": config.cost.monthly_budget_usd,
        "enforcement": "mandatory" if config.cost.enforce else "advisory",
    }


def with_budget(
    config: Mapping[str, Any] | None, budget: Mapping[str, Any] | None, as_of: datetime.date
) -> dict[str, Any]:
    """The policy pack config with the stack's budget for `stack-monthly-budget`: what a
    `--policy-pack-config` carries for `pulumi preview`. A level the given config states for
    the policy wins over the stack file's."""
    merged = dict(config or {})
    if budget is None:
        return merged
    entry = merged.get(BUDGET_POLICY)
    settings: dict[str, Any] = {
        "enforcementLevel": budget["enforcement"],
        "monthlyBudgetUsd": budget["monthlyUsd"],
        "pricingDate": as_of.isoformat(),
    }
    if isinstance(entry, str):
        settings["enforcementLevel"] = entry
    elif isinstance(entry, Mapping):
        settings.update(entry)
    merged[BUDGET_POLICY] = settings
    return merged


def write_policy_config(stack: str, path: Path, as_of: datetime.date | None = None) -> Path | None:
    """Write the pack config carrying the stack's budget to `path`; None when the stack file
    states no budget (nothing to hand over)."""
    budget = stack_budget(stack, None)
    if budget is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    config = with_budget(None, budget, as_of or datetime.date.today())
    path.write_text(json.dumps(config, indent=2, sort_keys=True))
    return path
