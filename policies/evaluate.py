"""Run the pack offline over recorded resources, the way the Pulumi CLI's analyzer would.

`make plan` records every resource of a stack under Pulumi mocks and calls `evaluate` here:
each policy's own `validate` runs on `ResourceValidationArgs` (one per resource, its inputs)
and `StackValidationArgs` (every resource, its outputs), with the policy's configuration and
enforcement level resolved from a `--policy-pack-config` style document as the CLI
does: a policy's own entry, then `all`, then the level the policy states.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from inspect import isawaitable
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from policies.config import PolicyConfigError
from policies.props import plain
from policies.registry import ALL_POLICIES, PACK_ENFORCEMENT_LEVEL

ENFORCEMENT_KEY = "enforcementLevel"
ALL_KEY = "all"


class PolicyEvaluationError(RuntimeError):
    """A policy raised while validating; the message names the policy and the resource."""


@dataclass(frozen=True)
class ResourceRecord:
    """One resource as a plan tool recorded it. `props` are the inputs (what resource
    policies see); `outputs`, when recorded, are what stack policies see, as in CrossGuard."""

    type: str
    urn: str
    name: str
    props: Mapping[str, Any]
    outputs: Mapping[str, Any] | None = None
    # The provider's ID for it; bridged AWS resources also carry it among their outputs.
    id: str | None = None
    parent: str | None = None
    # A provider reference as the engine writes it: "<provider urn>::<provider id>".
    provider: str | None = None
    dependencies: Sequence[str] = ()
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)
    protect: bool = False
    ignore_changes: Sequence[str] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ResourceRecord:
        """From a JSON object with `type`, `urn`, `name` and `inputs` (or `props`), and
        optionally `outputs`, `id`, `parent`, `provider`, `dependencies`, `propertyDependencies`,
        `protect` and `ignoreChanges`."""
        missing = [key for key in ("type", "urn", "name") if not isinstance(data.get(key), str)]
        props = data.get("inputs", data.get("props"))
        if not isinstance(props, Mapping):
            missing.append("inputs")
        if missing:
            raise ValueError(f"resource record {data.get('urn', data)!r} lacks {missing}")
        return cls(
            type=data["type"],
            urn=data["urn"],
            name=data["name"],
            props=props,
            outputs=data.get("outputs"),
            id=data.get("id") or None,
            parent=data.get("parent") or None,
            provider=data.get("provider") or None,
            dependencies=tuple(data.get("dependencies", ())),
            property_dependencies={
                key: tuple(urns) for key, urns in (data.get("propertyDependencies") or {}).items()
            },
            protect=bool(data.get("protect", False)),
            ignore_changes=tuple(data.get("ignoreChanges", ())),
        )


RecordLike = ResourceRecord | tuple[str, str, str, Mapping[str, Any]]


@dataclass(frozen=True)
class Violation:
    policy: str
    # EnforcementLevel's value: "mandatory" or "advisory".
    enforcement_level: str
    message: str
    # The resource in violation; "" when a stack policy blames the stack as a whole.
    urn: str
    description: str

    @property
    def mandatory(self) -> bool:
        return self.enforcement_level == EnforcementLevel.MANDATORY.value

    def to_dict(self) -> dict[str, str]:
        return {
            "policy": self.policy,
            "enforcementLevel": self.enforcement_level,
            "message": self.message,
            "urn": self.urn,
            "description": self.description,
        }


@dataclass(frozen=True)
class _PolicyConfig:
    level: EnforcementLevel
    properties: Mapping[str, Any]


def _level(value: Any, where: str) -> EnforcementLevel:
    try:
        return EnforcementLevel(value)
    except ValueError:
        allowed = ", ".join(level.value for level in EnforcementLevel)
        raise PolicyConfigError(
            f"policy pack config {where}: enforcement level must be one of {allowed}, got {value!r}"
        ) from None


def _declared_settings(policy: Policy) -> set[str]:
    return set(policy.config_schema.properties) if policy.config_schema else set()


def resolve_config(
    config: Mapping[str, Any] | None, policies: Sequence[Policy] = ALL_POLICIES
) -> dict[str, _PolicyConfig]:
    """Each policy's enforcement level and properties from a `--policy-pack-config` document:
    `{"all": "advisory", "<policy>": "disabled" | {"enforcementLevel": ..., "<setting>": ...}}`.
    Unknown policies and settings a policy does not read are errors, so a typo cannot
    silently leave a default in force."""
    config = config or {}
    by_name = {policy.name: policy for policy in policies}
    unknown = sorted(set(config) - set(by_name) - {ALL_KEY})
    if unknown:
        raise PolicyConfigError(f"policy pack config names unknown policies: {unknown}")
    all_level: EnforcementLevel | None = None
    if ALL_KEY in config:
        entry = config[ALL_KEY]
        raw = entry.get(ENFORCEMENT_KEY) if isinstance(entry, Mapping) else entry
        all_level = _level(raw, f"'{ALL_KEY}'")
    resolved: dict[str, _PolicyConfig] = {}
    for policy in policies:
        level = all_level or policy.enforcement_level or PACK_ENFORCEMENT_LEVEL
        properties: dict[str, Any] = {}
        entry = config.get(policy.name)
        if isinstance(entry, str):
            level = _level(entry, f"'{policy.name}'")
        elif isinstance(entry, Mapping):
            if ENFORCEMENT_KEY in entry:
                level = _level(entry[ENFORCEMENT_KEY], f"'{policy.name}'")
            properties = {key: value for key, value in entry.items() if key != ENFORCEMENT_KEY}
            extra = sorted(set(properties) - _declared_settings(policy))
            if extra:
                raise PolicyConfigError(
                    f"policy pack config '{policy.name}': unknown settings {extra}; it reads "
                    f"{sorted(_declared_settings(policy))}"
                )
        elif entry is not None:
            raise PolicyConfigError(
                f"policy pack config '{policy.name}' must be an enforcement level or an "
                f"object, got {entry!r}"
            )
        resolved[policy.name] = _PolicyConfig(level, properties)
    return resolved


def load_config(path: Path) -> dict[str, Any]:
    """A `--policy-pack-config` JSON file, checked against the pack."""
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise PolicyConfigError(f"cannot read policy pack config {path}: {error}") from error
    if not isinstance(document, dict):
        raise PolicyConfigError(f"policy pack config {path} must hold a JSON object")
    resolve_config(document)
    return document


def _record(item: RecordLike) -> ResourceRecord:
    if isinstance(item, ResourceRecord):
        return item
    type_, urn, name, props = item
    return ResourceRecord(type=type_, urn=urn, name=name, props=props)


def _options(record: ResourceRecord) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=record.protect,
        ignore_changes=list(record.ignore_changes),
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=record.parent,
    )


def _provider(
    record: ResourceRecord, by_urn: Mapping[str, ResourceRecord]
) -> PolicyProviderResource | None:
    if not record.provider:
        return None
    provider = by_urn.get(record.provider.rsplit("::", 1)[0])
    if provider is None:
        return None
    return PolicyProviderResource(
        provider.type, unknown_checking_proxy(plain(provider.props)), provider.urn, provider.name
    )


def _stack_props(record: ResourceRecord) -> dict[str, Any]:
    """What a stack policy sees: the outputs (the inputs when none were recorded), with the
    ID among them as the AWS provider reports it, so that references by ID resolve."""
    props: dict[str, Any] = plain(record.outputs if record.outputs is not None else record.props)
    if record.id and record.type.startswith("aws:"):
        props.setdefault("id", record.id)
    return props


def _stack_resources(
    records: Sequence[ResourceRecord], by_urn: Mapping[str, ResourceRecord]
) -> list[PolicyResource]:
    resources = {
        record.urn: PolicyResource(
            record.type,
            unknown_checking_proxy(_stack_props(record)),
            record.urn,
            record.name,
            _options(record),
            _provider(record, by_urn),
            None,
            [],
            {},
        )
        for record in records
    }
    for record in records:
        resource = resources[record.urn]
        if record.parent in resources:
            resource.parent = resources[record.parent]
        resource.dependencies = [resources[urn] for urn in record.dependencies if urn in resources]
        resource.property_dependencies = {
            key: [resources[urn] for urn in urns if urn in resources]
            for key, urns in record.property_dependencies.items()
        }
    return list(resources.values())


class _Collector:
    def __init__(self, policy: Policy, level: EnforcementLevel, default_urn: str) -> None:
        self.policy = policy
        self.level = level
        self.default_urn = default_urn
        self.violations: list[Violation] = []

    def report(self, message: str, urn: str | None = None) -> None:
        # As in the CLI, a resource policy's violation always belongs to that resource.
        self.violations.append(
            Violation(
                policy=self.policy.name,
                enforcement_level=self.level.value,
                message=message,
                urn=self.default_urn or urn or "",
                description=self.policy.description,
            )
        )

    def unknown(self, error: UnknownValueError) -> None:
        # The CLI reports these as advisory: the rule could not run, it did not pass.
        self.violations.append(
            Violation(
                policy=self.policy.name,
                enforcement_level=EnforcementLevel.ADVISORY.value,
                message=f"cannot be checked before the resources exist: {error.message}",
                urn=self.default_urn,
                description=self.policy.description,
            )
        )


def _run(validate: Callable[[], Any], collector: _Collector, where: str) -> None:
    try:
        result = validate()
        if result is not None and isawaitable(result):
            asyncio.run(_awaited(result))
    except UnknownValueError as error:
        collector.unknown(error)
    except _NotApplicableError:
        pass
    except Exception as error:
        raise PolicyEvaluationError(
            f"policy '{collector.policy.name}' failed on {where}: {error}"
        ) from error


async def _awaited(result: Any) -> None:
    await result


def evaluate(
    records: Iterable[RecordLike],
    config: Mapping[str, Any] | None = None,
    policies: Sequence[Policy] = ALL_POLICIES,
) -> list[Violation]:
    """Every violation the pack reports on these resources, resource policies first (in
    the pack's order, then the records' order), then stack policies.

    `records` are `ResourceRecord`s or `(type, urn, name, inputs)` tuples; `config` is a
    `--policy-pack-config` document (see `resolve_config`)."""
    resolved = resolve_config(config, policies)
    recorded = [_record(item) for item in records]
    by_urn = {record.urn: record for record in recorded}
    violations: list[Violation] = []
    stack_resources: list[PolicyResource] | None = None
    for policy in policies:
        settings = resolved[policy.name]
        level = settings.level
        if level is EnforcementLevel.DISABLED:
            continue
        if level is EnforcementLevel.REMEDIATE:
            # The pack remediates nothing; the CLI reports such a violation as mandatory.
            level = EnforcementLevel.MANDATORY
        if isinstance(policy, ResourceValidationPolicy):
            for record in recorded:
                args = ResourceValidationArgs(
                    record.type,
                    unknown_checking_proxy(plain(record.props)),
                    record.urn,
                    record.name,
                    _options(record),
                    _provider(record, by_urn),
                    dict(settings.properties),
                )
                collector = _Collector(policy, level, record.urn)
                _run(partial(policy.validate, args, collector.report), collector, record.urn)
                violations.extend(collector.violations)
        elif isinstance(policy, StackValidationPolicy):
            if stack_resources is None:
                stack_resources = _stack_resources(recorded, by_urn)
            collector = _Collector(policy, level, "")
            stack_args = StackValidationArgs(stack_resources, dict(settings.properties))
            _run(partial(policy.validate, stack_args, collector.report), collector, "the stack")
            violations.extend(collector.violations)
    return violations


def mandatory(violations: Iterable[Violation]) -> list[Violation]:
    """The violations that block `pulumi up` (and make `make plan` fail)."""
    return [violation for violation in violations if violation.mandatory]


__all__ = [
    "PolicyConfigError",
    "PolicyEvaluationError",
    "ResourceRecord",
    "Violation",
    "evaluate",
    "load_config",
    "mandatory",
    "resolve_config",
]
