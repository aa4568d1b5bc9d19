"""Step 1: the program for a stack under Pulumi's mocks, every resource with its inputs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from infra.offline import REPO_ROOT, OfflineRun, run_offline, stack_config_values
from policies.evaluate import ResourceRecord


class UnknownStack(ValueError):
    pass


def stacks(root: Path = REPO_ROOT) -> list[str]:
    return sorted(p.stem.removeprefix("Pulumi.") for p in root.glob("Pulumi.*.yaml"))


def record(stack: str, overrides: Mapping[str, str] | None = None) -> OfflineRun:
    """Run the program for `stack`; `overrides` replace stack config values (CLI-style)."""
    if stack not in stacks():
        raise UnknownStack(
            f"no stack {stack!r}: the stack files are "
            + ", ".join(f"Pulumi.{name}.yaml" for name in stacks())
        )
    if not overrides:
        return run_offline(stack)
    values, secret_keys = stack_config_values(stack)
    return run_offline(stack, config={**values, **overrides}, secret_keys=secret_keys)


def policy_records(run: OfflineRun) -> list[ResourceRecord]:
    return [
        ResourceRecord(
            type=resource.type,
            urn=resource.urn,
            name=resource.name,
            props=resource.inputs,
            outputs=resource.outputs,
            id=resource.id or None,
            parent=resource.parent or None,
            provider=resource.provider or None,
            dependencies=resource.depends_on,
            protect=resource.protect,
        )
        for resource in run.resources
    ]
