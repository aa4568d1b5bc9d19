"""Run the program for one stack under Pulumi mocks, with no cloud account and no network.

`run_offline("prod")` reads the committed `Pulumi.prod.yaml` the way the Pulumi CLI passes it
to the program, runs `infra.program.main` against mocks that answer like AWS would (ARNs,
IDs, endpoints), and returns every resource with its inputs plus the resolved stack outputs.
The tests use it, and so does `make plan` (policy evaluation and the chart render).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import runpy
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.settings import get_root_resource
from pulumi.runtime.stack import run_pulumi_func

from infra.config import NAMESPACE, stack_file_name
from tools.kit.programs import REPO_ROOT
from tools.plan.mocks import RELEASE_TYPE, SECRET_SIG, SIG_KEY, AwsLikeMocks

PROGRAM_DIR = REPO_ROOT / "infra"
PROJECT = "agent-platform"
# Stands in for a `secure:` stack value, which only the Pulumi CLI can decrypt.
OFFLINE_SECRET = "offline-placeholder-secret"  # noqa: S105 - mocks only, never deployed
# What a secret input is recorded as: its value never leaves the run (plan.json, reports).
REDACTED = "[secret]"


@dataclass(frozen=True)
class RecordedResource:
    urn: str
    id: str
    type: str
    name: str
    parent: str
    provider: str
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    # Paths of inputs that are Pulumi secrets; their values are recorded as REDACTED.
    secret_inputs: tuple[str, ...] = ()
    # Resource options the policy pack and the tests check (camelCase property paths, URNs).
    ignore_changes: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    protect: bool = False


@dataclass(frozen=True)
class OfflineRun:
    stack: str
    resources: tuple[RecordedResource, ...]
    outputs: dict[str, Any]
    secret_outputs: frozenset[str]

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [resource for resource in self.resources if resource.type == type_]

    def one(self, type_: str, name: str | None = None) -> RecordedResource:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.of_type(type_)]
            raise LookupError(f"expected one {type_} named {name!r}, found {names}")
        return found[0]

    def count_by_type(self) -> dict[str, int]:
        return dict(sorted(Counter(r.type for r in self.resources).items()))

    def _service_release(self) -> RecordedResource:
        # The local chart: neither from a chart repository nor an oci:// reference.
        local = [
            r
            for r in self.of_type(RELEASE_TYPE)
            if "repositoryOpts" not in r.inputs
            and not str(r.inputs.get("chart", "")).startswith("oci://")
        ]
        if len(local) != 1:
            raise LookupError(f"expected one release of the local chart, found {len(local)}")
        return local[0]

    def service_release_values(self) -> dict[str, Any]:
        """The values the program hands to the service's Helm release (the local chart)."""
        values: dict[str, Any] = self._service_release().inputs["values"]
        return values

    def service_release_target(self) -> tuple[str, str]:
        """The service release's name and namespace."""
        inputs = self._service_release().inputs
        return str(inputs.get("name", "agent")), str(inputs.get("namespace", "agent"))


def stack_config_values(stack: str, root: Path = REPO_ROOT) -> tuple[dict[str, str], list[str]]:
    """The stack file's config as the CLI hands it to a program: every value a string,
    structured values as JSON. Returns the values and the keys that are secrets."""
    path = root / stack_file_name(stack)
    if not path.is_file():
        raise FileNotFoundError(f"no stack file {path.name} in {root}")
    document = yaml.safe_load(path.read_text()) or {}
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (document.get("config") or {}).items():
        full_key = key if ":" in key else f"{NAMESPACE}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[full_key] = OFFLINE_SECRET
            secret_keys.append(full_key)
        elif isinstance(value, dict | list):
            values[full_key] = json.dumps(value)
        elif isinstance(value, bool):
            values[full_key] = "true" if value else "false"
        else:
            values[full_key] = str(value)
    return values, secret_keys


def _integral(value: Any) -> Any:
    """Pulumi's wire format carries every number as a float; give whole numbers back as ints
    (replica counts, ports) so recorded values read like what the program wrote."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


def _redact(value: Any, path: str, secrets: list[str]) -> Any:
    """Replace secret values with REDACTED, collecting their paths; keep everything else."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            secrets.append(path)
            return REDACTED
        return {
            key: _redact(item, f"{path}.{key}" if path else key, secrets)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact(item, f"{path}[{index}]", secrets) for index, item in enumerate(value)]
    return value


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, also keeping each registration's parent and provider."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            registration = self.resources[response.urn]
            secrets: list[str] = []
            raw_inputs = rpc.deserialize_properties(request.object, keep_internal=False)
            inputs = _integral(_redact(raw_inputs, "", secrets))
            self.recorded.append(
                RecordedResource(
                    urn=response.urn,
                    id=str(registration.id or ""),
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    provider=request.provider,
                    custom=bool(request.custom),
                    inputs=inputs,
                    secret_inputs=tuple(secrets),
                    outputs=_integral(_redact(dict(registration.state or {}), "", [])),
                    ignore_changes=tuple(request.ignoreChanges),
                    depends_on=tuple(request.dependencies),
                    protect=bool(request.protect),
                )
            )
        return response


def _run(stack: str, values: Mapping[str, str], secret_keys: list[str]) -> OfflineRun:
    region = values.get("aws:region", "eu-west-1")
    mocks = AwsLikeMocks(region)
    monitor = _RecordingMonitor(mocks)
    # Pulumi binds its root resource to the current loop: make the fresh loop current first.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(dict(values), secret_keys)
    resolved: dict[str, Any] = {}
    secret: set[str] = set()

    async def run_program() -> None:
        # Exactly what `pulumi up` runs: the program directory's __main__.py.
        runpy.run_path(str(PROGRAM_DIR), run_name="__main__")
        stack_resource = get_root_resource()
        if stack_resource is None:
            raise RuntimeError("the Pulumi mocks created no root stack")
        outputs: dict[str, Any] = dict(getattr(stack_resource, "outputs", {}))
        for key, output in outputs.items():
            resolved[key] = await output.future()
            if await output.is_secret():
                secret.add(key)

    try:
        loop.run_until_complete(run_pulumi_func(run_program))
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    return OfflineRun(
        stack=stack,
        resources=tuple(monitor.recorded),
        outputs=resolved,
        secret_outputs=frozenset(secret),
    )


def run_offline(
    stack: str,
    *,
    config: Mapping[str, str] | None = None,
    secret_keys: list[str] | None = None,
    root: Path = REPO_ROOT,
) -> OfflineRun:
    """Run the program for `stack`. `config` replaces the stack file's values (as the CLI
    would pass them); by default they come from `Pulumi.<stack>.yaml` under `root`."""
    if config is None:
        values, keys = stack_config_values(stack, root)
    else:
        values, keys = dict(config), list(secret_keys or [])
    # A fresh context per run: Pulumi keeps its settings and root resource in context variables.
    return contextvars.Context().run(_run, stack, values, keys)


__all__ = [
    "REDACTED",
    "RELEASE_TYPE",
    "OfflineRun",
    "RecordedResource",
    "run_offline",
    "stack_config_values",
]
