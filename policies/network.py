"""Security groups: nothing opens ingress to the whole internet (0.0.0.0/0 or ::/0), except
the configured ports (443) over TCP on a load balancer's group, marked by its tags.

Inline `ingress` blocks are checked on the group itself. Standalone rules
(`ec2.SecurityGroupRule`, `vpc.SecurityGroupIngressRule`) are checked by a stack policy,
which joins each rule to its group to read the group's tags; a rule on a group this stack
does not manage is treated as being on an ordinary group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.config import config_schema, integers, string_map
from policies.joins import known_strings, referenced
from policies.props import as_number, as_strings, is_list, lookup, tags_of

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
# A VPC's default group takes the same inline rules; programs adopt it to empty it.
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
GROUP_TYPES = frozenset({SECURITY_GROUP, DEFAULT_SECURITY_GROUP})
EC2_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
VPC_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ANYWHERE = frozenset({"0.0.0.0/0", "::/0"})
ALL_PROTOCOLS = frozenset({"-1", "all"})
TCP = frozenset({"tcp", "6"})
SETTINGS = ("openIngressAllowedPorts", "loadBalancerGroupTags")


def _is_load_balancer_group(tags: Mapping[str, Any], config: Mapping[str, Any]) -> bool:
    marker = string_map(config, "loadBalancerGroupTags")
    return bool(marker) and all(tags.get(key) == value for key, value in marker.items())


def _open_ingress(
    protocol: Any,
    from_port: Any,
    to_port: Any,
    cidrs: Sequence[str],
    *,
    load_balancer: bool,
    config: Mapping[str, Any],
) -> str | None:
    """What the rule opens to the internet that it may not, or None."""
    opened = sorted(ANYWHERE & set(cidrs))
    if not opened:
        return None
    proto = str(protocol).lower()
    low, high = as_number(from_port), as_number(to_port)
    allowed = integers(config, "openIngressAllowedPorts")
    single_port = low is not None and low == high and int(low) in allowed
    if load_balancer and proto in TCP and single_port:
        return None
    if proto in ALL_PROTOCOLS:
        what = "every port"
    elif low is None or high is None:
        what = f"{proto} (ports unset)"
    elif low == high:
        what = f"{proto} port {low:g}"
    else:
        what = f"{proto} ports {low:g}-{high:g}"
    marker = ", ".join(f"{k}={v}" for k, v in string_map(config, "loadBalancerGroupTags").items())
    allowed_text = ", ".join(str(port) for port in allowed)
    return (
        f"opens {what} to {', '.join(opened)}; only TCP {allowed_text} on a load balancer's "
        f"group (tagged {marker}) may be open to the internet"
    )


def _inline_ingress(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in GROUP_TYPES:
        return
    config = args.get_config()
    load_balancer = _is_load_balancer_group(tags_of(args.props), config)
    ingress = lookup(args.props, "ingress")
    for index, rule in enumerate(ingress if is_list(ingress) else []):
        cidrs = as_strings(lookup(rule, "cidrBlocks")) + as_strings(lookup(rule, "ipv6CidrBlocks"))
        problem = _open_ingress(
            lookup(rule, "protocol"),
            lookup(rule, "fromPort"),
            lookup(rule, "toPort"),
            cidrs,
            load_balancer=load_balancer,
            config=config,
        )
        if problem:
            report(f"'{args.name}' ingress #{index} {problem}.", None)


def _group_names(group: PolicyResource) -> list[str]:
    return known_strings(group, "id", "name")


def _standalone_rules(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    groups = [r for r in args.resources if r.resource_type in GROUP_TYPES]
    for rule in args.resources:
        props = rule.props
        if rule.resource_type == EC2_RULE:
            if lookup(props, "type") != "ingress":
                continue
            protocol = lookup(props, "protocol")
            cidrs = as_strings(lookup(props, "cidrBlocks")) + as_strings(
                lookup(props, "ipv6CidrBlocks")
            )
        elif rule.resource_type == VPC_INGRESS_RULE:
            protocol = lookup(props, "ipProtocol")
            cidrs = as_strings(lookup(props, "cidrIpv4")) + as_strings(lookup(props, "cidrIpv6"))
        else:
            continue
        if not ANYWHERE & set(cidrs):
            continue
        group = referenced(rule, "securityGroupId", groups, _group_names)
        load_balancer = group is not None and _is_load_balancer_group(tags_of(group.props), config)
        problem = _open_ingress(
            protocol,
            lookup(props, "fromPort"),
            lookup(props, "toPort"),
            cidrs,
            load_balancer=load_balancer,
            config=config,
        )
        if problem:
            on = f"group '{group.name}'" if group is not None else "a group outside this stack"
            report(f"'{rule.name}' on {on} {problem}.", rule.urn)


NO_OPEN_INGRESS = ResourceValidationPolicy(
    name="security-group-no-open-ingress",
    description="Security groups open no ingress to the internet, but 443 on a load balancer.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_inline_ingress,
    config_schema=config_schema(*SETTINGS),
)
NO_OPEN_INGRESS_RULES = StackValidationPolicy(
    name="security-group-rule-no-open-ingress",
    description="Security group rules open no ingress to the internet, but 443 on a load balancer.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_standalone_rules,
    config_schema=config_schema(*SETTINGS),
)

POLICIES = [NO_OPEN_INGRESS, NO_OPEN_INGRESS_RULES]
