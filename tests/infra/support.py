"""Helpers for reading an offline run: the program run once per stack under Pulumi mocks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from infra.config import StackConfig, parse_stack_config
from tools.plan.offline import OfflineRun, RecordedResource, run_offline, stack_config_values

STACKS = ("dev", "staging", "prod")

_runs: dict[str, OfflineRun] = {}


def offline_run(stack: str) -> OfflineRun:
    """Each stack runs once per session from its committed stack file: a run takes seconds
    and the tests only read it."""
    if stack not in _runs:
        _runs[stack] = run_offline(stack)
    return _runs[stack]


def stack_config(stack: str) -> StackConfig:
    values, _ = stack_config_values(stack)
    return parse_stack_config(stack, values)


def document(resource: RecordedResource, key: str) -> dict[str, Any]:
    """A JSON policy document held in an input, parsed."""
    parsed: dict[str, Any] = json.loads(resource.inputs[key])
    return parsed


def statements(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from doc["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def by_name(run: OfflineRun, type_: str) -> dict[str, RecordedResource]:
    return {resource.name: resource for resource in run.of_type(type_)}


def children_of(run: OfflineRun, parent_type: str) -> list[RecordedResource]:
    parents = {r.urn for r in run.of_type(parent_type)}
    return [r for r in run.resources if r.parent in parents]
