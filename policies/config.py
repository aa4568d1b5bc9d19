"""The pack's thresholds: read from the policy pack config, with defaults.

CrossGuard configures each policy separately (`--policy-pack-config` maps a policy name to an
enforcement level and properties), so every policy declares, in its config schema, the
settings below that it reads; a setting left out takes its default. Values arrive through
protobuf, so whole numbers come as floats (`7.0`): the readers accept them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import PolicyConfigSchema

from policies.props import is_list, stack_of_urn


class PolicyConfigError(ValueError):
    """A configured value has the wrong shape; the message names the setting."""


@dataclass(frozen=True)
class Setting:
    key: str
    description: str
    schema: Mapping[str, Any]
    default: Any


_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}}

SETTINGS: dict[str, Setting] = {
    setting.key: setting
    for setting in (
        Setting(
            "productionStacks",
            "Stacks held to the production rules (deletion protection, multi-AZ, replicas, "
            "disruption budget, canary).",
            _STRINGS,
            ("prod",),
        ),
        Setting(
            "devStacks",
            "Stacks where an image tagged `latest` is only advisory.",
            _STRINGS,
            ("dev",),
        ),
        Setting(
            "minBackupRetentionDays",
            "Fewest days of automated database backups.",
            {"type": "integer", "minimum": 1, "maximum": 35},
            7,
        ),
        Setting(
            "requiredTagKeys",
            "Tags every taggable AWS resource carries, each with a non-empty value.",
            _STRINGS,
            ("owner", "environment", "cost-centre"),
        ),
        Setting(
            "openIngressAllowedPorts",
            "Ports a load balancer's security group may open to 0.0.0.0/0 or ::/0 (TCP).",
            {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65535}},
            (443,),
        ),
        Setting(
            "loadBalancerGroupTags",
            "Tags that mark a security group as a load balancer's (all must match).",
            {"type": "object", "additionalProperties": {"type": "string"}},
            {"purpose": "load-balancer"},
        ),
        Setting(
            "minProductionReplicas",
            "Fewest service replicas (and autoscaling minimum) in a production stack.",
            {"type": "integer", "minimum": 1},
            3,
        ),
        Setting(
            "serviceChart",
            "Name of the service's chart: the Helm release whose values the Kubernetes rules "
            "read (the last segment of the release's `chart`).",
            {"type": "string", "minLength": 1},
            "langgraph-agent",
        ),
        Setting(
            "requiredResourceFields",
            "Container resource fields the release's `resources` value must set.",
            _STRINGS,
            ("requests.cpu", "requests.memory", "limits.memory"),
        ),
        Setting(
            "requiredClusterLogTypes",
            "EKS control-plane log types that must be enabled.",
            _STRINGS,
            ("api", "audit", "authenticator"),
        ),
        Setting(
            "protectedStacks",
            "Stacks whose stateful resources (databases, caches, buckets, repositories, "
            "keys) carry Pulumi's `protect`, so a destroy or a replacement stops at them.",
            _STRINGS,
            ("staging", "prod"),
        ),
        Setting(
            "digestStacks",
            "Stacks whose service release must pull its image by digest.",
            _STRINGS,
            ("staging", "prod"),
        ),
        Setting(
            "minStandardSupportDays",
            "Fewest days an EKS cluster's version must have left in standard support.",
            {"type": "integer", "minimum": 0, "maximum": 365},
            30,
        ),
        Setting(
            "supportCheckDate",
            "The day the EKS support window is judged on (YYYY-MM-DD); empty: today.",
            {"type": "string"},
            "",
        ),
        Setting(
            "monthlyBudgetUsd",
            "The stack's monthly budget in USD (from its stack file's cost.monthlyBudgetUsd); "
            "unset: no budget to check.",
            {"type": "number", "exclusiveMinimum": 0},
            None,
        ),
        Setting(
            "pricingDate",
            "The day (YYYY-MM-DD) whose prices apply, e.g. an EKS version's support window; "
            "unset: today.",
            {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
            None,
        ),
        Setting(
            "backupBucketValue",
            "Dotted path, in the service release's values, of the backup bucket's name.",
            {"type": "string", "minLength": 1},
            "config.backupBucket",
        ),
    )
}


def config_schema(*keys: str) -> PolicyConfigSchema:
    """The schema a policy declares for the settings it reads, defaults included, so that
    `pulumi policy` shows them and validates a configured value's type."""
    properties: dict[str, dict[str, Any]] = {}
    for key in keys:
        setting = SETTINGS[key]
        default = setting.default
        if isinstance(default, tuple):
            default = list(default)
        elif isinstance(default, Mapping):
            default = dict(default)
        properties[key] = {**setting.schema, "description": setting.description}
        # A setting without a default (None) is simply absent when not configured.
        if default is not None:
            properties[key]["default"] = default
    return PolicyConfigSchema(properties=properties)


def _raw(config: Mapping[str, Any], key: str) -> Any:
    if key not in SETTINGS:
        raise KeyError(f"{key!r} is not a setting of this pack")
    value = config.get(key)
    return SETTINGS[key].default if value is None else value


def _integer(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyConfigError(f"policy config {key!r} must be an integer, got {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise PolicyConfigError(f"policy config {key!r} must be an integer, got {value!r}")
        return int(value)
    return value


def integer(config: Mapping[str, Any], key: str, *, minimum: int = 1) -> int:
    value = _integer(_raw(config, key), key)
    if value < minimum:
        raise PolicyConfigError(f"policy config {key!r} must be at least {minimum}, got {value}")
    return value


def optional_number(config: Mapping[str, Any], key: str) -> float | None:
    value = _raw(config, key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise PolicyConfigError(f"policy config {key!r} must be a positive number, got {value!r}")
    return float(value)


def optional_string(config: Mapping[str, Any], key: str) -> str | None:
    value = _raw(config, key)
    if value is None:
        return None
    return string(config, key)


def integers(config: Mapping[str, Any], key: str) -> tuple[int, ...]:
    value = _raw(config, key)
    if not is_list(value):
        raise PolicyConfigError(f"policy config {key!r} must be a list of integers, got {value!r}")
    return tuple(_integer(item, key) for item in value)


def string(config: Mapping[str, Any], key: str) -> str:
    value = _raw(config, key)
    if not isinstance(value, str) or not value:
        raise PolicyConfigError(f"policy config {key!r} must be a non-empty string, got {value!r}")
    return value


def strings(config: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = _raw(config, key)
    if not is_list(value) or not all(isinstance(item, str) and item for item in value):
        raise PolicyConfigError(
            f"policy config {key!r} must be a list of non-empty strings, got {value!r}"
        )
    return tuple(value)


def string_map(config: Mapping[str, Any], key: str) -> dict[str, str]:
    value = _raw(config, key)
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise PolicyConfigError(
            f"policy config {key!r} must be an object of string values, got {value!r}"
        )
    return {str(k): str(v) for k, v in value.items()}


def is_production(urn: str, config: Mapping[str, Any]) -> bool:
    """Whether the resource's stack (from its URN) is a production stack. A URN that names no
    stack counts as production: with the stack unknown, the strictest rules apply."""
    stack = stack_of_urn(urn)
    return stack is None or stack in strings(config, "productionStacks")


def in_stacks(urn: str, config: Mapping[str, Any], key: str) -> bool:
    """Whether the resource's stack is listed under `key`; an unknown stack counts as listed
    (the strictest rules apply)."""
    stack = stack_of_urn(urn)
    return stack is None or stack in strings(config, key)


def is_dev(urn: str, config: Mapping[str, Any]) -> bool:
    stack = stack_of_urn(urn)
    return stack is not None and stack in strings(config, "devStacks")
