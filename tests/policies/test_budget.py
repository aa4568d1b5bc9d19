"""Stack level: the estimated monthly cost within the stack's budget, naming the biggest
contributors when it is not."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, PolicyProviderResource, PolicyResource
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from policies import budget
from policies.evaluate import ResourceRecord, evaluate, mandatory
from policies.pricing import load_prices
from tests.policies.support import check_stack, policy_resource, urn

DAY = "2026-11-30"  # EKS 1.33 is in extended support, 1.35 in standard support


def cluster(version: str = "1.35") -> PolicyResource:
    return policy_resource("aws:eks/cluster:Cluster", "agent-prod-eks", {"version": version})


def nodes(count: int = 3, instance: str = "m6i.xlarge") -> PolicyResource:
    props = {
        "instanceTypes": [instance],
        "scalingConfig": {"minSize": count, "desiredSize": count, "maxSize": count * 3},
    }
    return policy_resource("aws:eks/nodeGroup:NodeGroup", "agent-prod-general", props)


def key() -> PolicyResource:
    return policy_resource("aws:kms/key:Key", "agent-prod-db", {})


def hourly(block: str, item: str) -> float:
    row = load_prices().price("eu-west-1", block, item)
    assert row is not None
    return row.usd * load_prices().hours_per_month


def config(budget_usd: float | None) -> dict[str, Any]:
    settings: dict[str, Any] = {"pricingDate": DAY}
    if budget_usd is not None:
        settings["monthlyBudgetUsd"] = budget_usd
    return settings


def test_the_rule_is_advisory_by_default() -> None:
    assert budget.STACK_MONTHLY_BUDGET.enforcement_level is EnforcementLevel.ADVISORY


def test_within_budget_complies() -> None:
    stack = [cluster(), nodes(), key()]
    gp2 = load_prices().price("eu-west-1", "ebs", "gp2")
    assert gp2 is not None
    cost = (
        hourly("eks", "cluster-standard-support")
        + 3 * hourly("ec2", "m6i.xlarge")
        + 3 * 20 * gp2.usd  # EKS's default 20 GB root volume per node
        + 1.0  # the key
    )
    assert check_stack(budget.STACK_MONTHLY_BUDGET, stack, config(cost + 0.01)) == []
    assert len(check_stack(budget.STACK_MONTHLY_BUDGET, stack, config(cost - 0.01))) == 1


def test_over_budget_names_the_total_and_the_biggest_contributors() -> None:
    stack = [cluster("1.33"), nodes(2), key()]
    found = check_stack(budget.STACK_MONTHLY_BUDGET, stack, config(100))
    assert len(found) == 1
    message = found[0].message
    assert found[0].urn is None  # the stack as a whole
    extended = hourly("eks", "cluster-extended-support")
    gp2 = load_prices().price("eu-west-1", "ebs", "gp2")
    assert gp2 is not None
    compute = 2 * hourly("ec2", "m6i.xlarge") + 2 * 20 * gp2.usd
    assert f"exceeds the budget $100 by ${extended + compute + 1 - 100:,.0f}" in message
    assert "(on-demand list prices of 2026-11-30)" in message
    # Largest first: the extended-support control plane, then the nodes, then the key.
    assert message.index("agent-prod-eks (Cluster)") < message.index("agent-prod-general")
    assert message.index("agent-prod-general (NodeGroup)") < message.index("agent-prod-db (Key)")


def test_without_a_budget_there_is_nothing_to_check() -> None:
    assert check_stack(budget.STACK_MONTHLY_BUDGET, [cluster("1.33"), nodes()], config(None)) == []


def test_a_region_comes_from_the_provider() -> None:
    provider = PolicyProviderResource(
        "pulumi:providers:aws",
        unknown_checking_proxy({"region": "ap-south-1"}),
        "urn:pulumi:prod::agent-platform::pulumi:providers:aws::aws",
        "aws",
    )
    elsewhere = key()
    elsewhere.provider = provider
    billed = budget.billables([elsewhere, cluster()], "eu-west-1")
    assert [b.region for b in billed] == ["ap-south-1", "ap-south-1"]


def test_a_value_unknown_during_preview_is_left_out_not_fatal() -> None:
    group = policy_resource(
        "aws:eks/nodeGroup:NodeGroup",
        "agent-prod-general",
        {"instanceTypes": ["m6i.xlarge"], "scalingConfig": {"desiredSize": UNKNOWN_STRING_VALUE}},
    )
    found = check_stack(budget.STACK_MONTHLY_BUDGET, [cluster(), group], config(1))
    # The cluster alone is over a $1 budget; the node group, its size unknown, is not counted.
    assert len(found) == 1
    assert "agent-prod-general" not in found[0].message


@pytest.mark.parametrize("level", ["advisory", "mandatory"])
def test_the_pack_reports_it_at_the_configured_level(level: str) -> None:
    records = [
        ResourceRecord(type=r.resource_type, urn=r.urn, name=r.name, props=dict(r.props))
        for r in (cluster("1.33"), nodes())
    ]
    pack_config = {"stack-monthly-budget": {"enforcementLevel": level, **config(50)}}
    found = [v for v in evaluate(records, pack_config) if v.policy == "stack-monthly-budget"]
    assert [v.enforcement_level for v in found] == [level]
    assert bool(mandatory(found)) is (level == "mandatory")
    assert urn("aws:eks/cluster:Cluster", "agent-prod-eks") not in found[0].message
    assert "agent-prod-eks (Cluster)" in found[0].message
