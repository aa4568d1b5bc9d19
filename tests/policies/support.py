"""Build CrossGuard arguments the way the analyzer does and run a policy's own `validate`."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy

PROJECT = "agent-platform"


def urn(type_: str, name: str, stack: str = "prod") -> str:
    return f"urn:pulumi:{stack}::{PROJECT}::{type_}::{name}"


def options(*, protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )


def resource_args(
    type_: str,
    props: Mapping[str, Any],
    *,
    name: str = "subject",
    stack: str = "prod",
    config: Mapping[str, Any] | None = None,
    provider: PolicyProviderResource | None = None,
    resource_urn: str | None = None,
    protect: bool = False,
) -> ResourceValidationArgs:
    """Arguments as the analyzer builds them: inputs behind the unknown-checking proxy."""
    return ResourceValidationArgs(
        type_,
        unknown_checking_proxy(copy.deepcopy(dict(props))),
        resource_urn or urn(type_, name, stack),
        name,
        options(protect=protect),
        provider,
        dict(config) if config is not None else None,
    )


@dataclass(frozen=True)
class Reported:
    message: str
    urn: str | None


def check(policy: ResourceValidationPolicy, args: ResourceValidationArgs) -> list[str]:
    """The messages the policy reports through its own `validate`."""
    found: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append(message)

    result = policy.validate(args, report)
    assert result is None, "the pack's validations are synchronous"
    return found


def policy_resource(
    type_: str,
    name: str,
    props: Mapping[str, Any],
    *,
    stack: str = "prod",
    dependencies: Sequence[PolicyResource] = (),
    property_dependencies: Mapping[str, Sequence[PolicyResource]] | None = None,
) -> PolicyResource:
    return PolicyResource(
        type_,
        unknown_checking_proxy(copy.deepcopy(dict(props))),
        urn(type_, name, stack),
        name,
        options(),
        None,
        None,
        list(dependencies),
        {key: list(value) for key, value in (property_dependencies or {}).items()},
    )


def check_stack(
    policy: StackValidationPolicy,
    resources: Sequence[PolicyResource],
    config: Mapping[str, Any] | None = None,
) -> list[Reported]:
    found: list[Reported] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append(Reported(message, urn))

    result = policy.validate(
        StackValidationArgs(list(resources), dict(config) if config is not None else None),
        report,
    )
    assert result is None, "the pack's validations are synchronous"
    return found
