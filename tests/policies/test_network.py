"""Security groups: no ingress from the internet but TCP 443 on a load balancer's group."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, PolicyResource

from policies import network
from tests.policies.support import check, check_stack, policy_resource, resource_args

LB_TAGS = {"purpose": "load-balancer", "owner": "platform"}
HTTPS_FROM_ANYWHERE = {
    "protocol": "tcp",
    "fromPort": 443,
    "toPort": 443,
    "cidrBlocks": ["0.0.0.0/0"],
    "ipv6CidrBlocks": ["::/0"],
}
FROM_THE_VPC = {"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["10.0.0.0/16"]}


def group(ingress: list[dict[str, Any]], tags: dict[str, str] | None = None) -> dict[str, Any]:
    return {"vpcId": "vpc-1", "ingress": ingress, "tags": tags or {"owner": "platform"}}


def test_both_security_group_rules_are_mandatory() -> None:
    levels = {policy.enforcement_level for policy in network.POLICIES}
    assert levels == {EnforcementLevel.MANDATORY}


def test_private_ingress_and_https_on_a_load_balancer_comply() -> None:
    private = resource_args(network.SECURITY_GROUP, group([FROM_THE_VPC]))
    assert check(network.NO_OPEN_INGRESS, private) == []
    balancer = resource_args(network.SECURITY_GROUP, group([HTTPS_FROM_ANYWHERE], LB_TAGS))
    assert check(network.NO_OPEN_INGRESS, balancer) == []


def test_https_from_anywhere_on_an_ordinary_group_is_reported() -> None:
    args = resource_args(network.SECURITY_GROUP, group([HTTPS_FROM_ANYWHERE]), name="nodes")
    assert check(network.NO_OPEN_INGRESS, args) == [
        "'nodes' ingress #0 opens tcp port 443 to 0.0.0.0/0, ::/0; only TCP 443 on a load "
        "balancer's group (tagged purpose=load-balancer) may be open to the internet."
    ]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"protocol": "tcp", "fromPort": 22, "toPort": 22}, "tcp port 22"),
        ({"protocol": "tcp", "fromPort": 0, "toPort": 65535}, "tcp ports 0-65535"),
        ({"protocol": "-1", "fromPort": 0, "toPort": 0}, "every port"),
        ({"protocol": "udp", "fromPort": 443, "toPort": 443}, "udp port 443"),
    ],
    ids=["ssh", "port-range", "all-protocols", "udp-443"],
)
def test_anything_else_open_on_a_load_balancer_is_reported(
    rule: dict[str, Any], expected: str
) -> None:
    props = group([FROM_THE_VPC, {**rule, "cidrBlocks": ["0.0.0.0/0"]}], LB_TAGS)
    messages = check(network.NO_OPEN_INGRESS, resource_args(network.SECURITY_GROUP, props))
    assert len(messages) == 1
    assert messages[0].startswith("'subject' ingress #1 opens " + expected)


def test_the_vpcs_default_group_is_held_to_the_same_rule() -> None:
    args = resource_args(network.DEFAULT_SECURITY_GROUP, group([HTTPS_FROM_ANYWHERE]))
    assert len(check(network.NO_OPEN_INGRESS, args)) == 1
    emptied = resource_args(network.DEFAULT_SECURITY_GROUP, {"vpcId": "vpc-1"})
    assert check(network.NO_OPEN_INGRESS, emptied) == []


def test_allowed_ports_and_the_marker_come_from_config() -> None:
    props = group([{**HTTPS_FROM_ANYWHERE, "fromPort": 80, "toPort": 80}], {"role": "edge"})
    config = {"openIngressAllowedPorts": [80.0, 443.0], "loadBalancerGroupTags": {"role": "edge"}}
    args = resource_args(network.SECURITY_GROUP, props, config=config)
    assert check(network.NO_OPEN_INGRESS, args) == []
    assert len(check(network.NO_OPEN_INGRESS, resource_args(network.SECURITY_GROUP, props))) == 1


def _rules_on(
    target: PolicyResource, *rules: tuple[str, dict[str, Any]], link: str = "property"
) -> list[PolicyResource]:
    resources = [target]
    for name, props in rules:
        type_ = network.EC2_RULE if "type" in props else network.VPC_INGRESS_RULE
        if link == "property":
            rule = policy_resource(
                type_, name, props, property_dependencies={"securityGroupId": [target]}
            )
        elif link == "id":
            rule = policy_resource(type_, name, {**props, "securityGroupId": "sg-0123"})
        else:
            rule = policy_resource(type_, name, props, dependencies=[target])
        resources.append(rule)
    return resources


EC2_HTTPS = {"type": "ingress", **HTTPS_FROM_ANYWHERE}
VPC_HTTPS = {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv4": "0.0.0.0/0"}
VPC_SSH = {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv6": "::/0"}


@pytest.mark.parametrize("link", ["property", "id", "dependency"])
def test_standalone_https_rules_on_a_load_balancer_comply(link: str) -> None:
    balancer = policy_resource(network.SECURITY_GROUP, "alb", {"id": "sg-0123", "tags": LB_TAGS})
    resources = _rules_on(balancer, ("https", EC2_HTTPS), ("https6", VPC_HTTPS), link=link)
    assert check_stack(network.NO_OPEN_INGRESS_RULES, resources) == []


def test_standalone_open_rules_are_reported_with_their_group() -> None:
    nodes = policy_resource(network.SECURITY_GROUP, "nodes", {"id": "sg-9", "tags": {}})
    resources = _rules_on(nodes, ("https", EC2_HTTPS), ("ssh", VPC_SSH))
    reported = check_stack(network.NO_OPEN_INGRESS_RULES, resources)
    assert [(r.urn, r.message.split(";")[0]) for r in reported] == [
        (resources[1].urn, "'https' on group 'nodes' opens tcp port 443 to 0.0.0.0/0, ::/0"),
        (resources[2].urn, "'ssh' on group 'nodes' opens tcp port 22 to ::/0"),
    ]


def test_a_rule_on_a_group_outside_the_stack_is_not_a_load_balancers() -> None:
    rule = policy_resource(
        network.VPC_INGRESS_RULE, "https", {**VPC_HTTPS, "securityGroupId": "sg-x"}
    )
    reported = check_stack(network.NO_OPEN_INGRESS_RULES, [rule])
    assert len(reported) == 1
    assert "on a group outside this stack" in reported[0].message


def test_egress_and_private_rules_are_ignored() -> None:
    egress = policy_resource(network.EC2_RULE, "out", {**EC2_HTTPS, "type": "egress"})
    private = policy_resource(network.VPC_INGRESS_RULE, "db", {**VPC_SSH, "cidrIpv6": "fd00::/8"})
    assert check_stack(network.NO_OPEN_INGRESS_RULES, [egress, private]) == []
