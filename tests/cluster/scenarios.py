"""The values the chart is installed with on the cluster: every CI fixture of the chart and
every stack's release values exactly as `make plan` records them from the Pulumi program."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.cluster.kube import CHART_DIR
from tools.plan.record import record, stacks


@dataclass(frozen=True)
class Scenario:
    name: str
    source: str

    def values(self) -> dict[str, Any]:
        if self.source == "stack":
            return stack_values(self.name.removeprefix("stack-"))
        loaded: dict[str, Any] = yaml.safe_load(Path(self.source).read_text()) or {}
        return loaded


@cache
def stack_values(stack: str) -> dict[str, Any]:
    values: dict[str, Any] = record(stack).service_release_values()
    return values


def scenarios() -> list[Scenario]:
    fixtures = [
        Scenario(f"ci-{path.name.removesuffix('-values.yaml')}", str(path))
        for path in sorted((CHART_DIR / "ci").glob("*-values.yaml"))
    ]
    return fixtures + [Scenario(f"stack-{stack}", "stack") for stack in stacks()]


def canary_on(values: dict[str, Any]) -> bool:
    return bool((values.get("canary") or {}).get("enabled"))
