"""Differences between two stacks' plans: resources added or removed, inputs and release
values that differ. Names carry the stack (agent-prod-db), so they are compared with it
replaced by `<stack>`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tools.plan.offline import OfflineRun

MAX_CHANGES_PER_RESOURCE = 25


@dataclass
class StackDiff:
    base: str
    other: str
    only_in_base: list[str] = field(default_factory=list)
    only_in_other: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)
    values: list[str] = field(default_factory=list)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat or {prefix: {}}
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        flat = {}
        for index, item in enumerate(value):
            flat.update(flatten(item, f"{prefix}[{index}]"))
        return flat
    return {prefix: value}


def normalise(value: Any, stack: str) -> Any:
    if isinstance(value, str):
        return value.replace(f"-{stack}-", "-<stack>-").replace(f"-{stack}", "-<stack>")
    return value


def _keyed(run: OfflineRun) -> dict[str, dict[str, Any]]:
    return {
        f"{resource.type}::{normalise(resource.name, run.stack)}": {
            path: normalise(value, run.stack) for path, value in flatten(resource.inputs).items()
        }
        for resource in run.resources
    }


def _changes(left: Mapping[str, Any], right: Mapping[str, Any], base: str, other: str) -> list[str]:
    lines = []
    for path in sorted(set(left) | set(right)):
        if left.get(path) != right.get(path):
            lines.append(f"{path}: {base}={left.get(path)!r} {other}={right.get(path)!r}")
    return lines


def compare(base: OfflineRun, other: OfflineRun) -> StackDiff:
    left, right = _keyed(base), _keyed(other)
    result = StackDiff(base=base.stack, other=other.stack)
    result.only_in_base = sorted(set(left) - set(right))
    result.only_in_other = sorted(set(right) - set(left))
    for key in sorted(set(left) & set(right)):
        lines = _changes(left[key], right[key], base.stack, other.stack)
        if lines:
            result.changed[key] = lines[:MAX_CHANGES_PER_RESOURCE] + (
                [f"... {len(lines) - MAX_CHANGES_PER_RESOURCE} more"]
                if len(lines) > MAX_CHANGES_PER_RESOURCE
                else []
            )
    base_values = {
        k: normalise(v, base.stack) for k, v in flatten(base.service_release_values()).items()
    }
    other_values = {
        k: normalise(v, other.stack) for k, v in flatten(other.service_release_values()).items()
    }
    result.values = _changes(base_values, other_values, base.stack, other.stack)
    return result
