"""Step 1: the program for a stack under Pulumi's mocks, every resource with its inputs; the
service release's values from it, rendered through the chart and validated."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from policies.evaluate import ResourceRecord
from tools.kit.chart import Rendered, render, validate
from tools.kit.programs import REPO_ROOT
from tools.plan.offline import OfflineRun, run_offline, stack_config_values


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


def render_release(run: OfflineRun) -> tuple[dict[str, Any], Rendered]:
    """The values the program hands to the service's release, and the chart rendered by helm
    with exactly those values (name and namespace too), every manifest schema-validated
    (`schema_errors`)."""
    values = run.service_release_values()
    release, namespace = run.service_release_target()
    # The schemas of the Kubernetes version the stack's cluster runs.
    version = f"{run.one('aws:eks/cluster:Cluster').inputs['version']}.0"
    rendered = render(
        values=values, release=release, namespace=namespace, kubernetes_version=version
    )
    validate(rendered)
    return values, rendered
