"""Each committed stack's estimate from its offline plan, checked against figures worked out
from its stack file and the price table; the difference between two stacks; the picture."""

from __future__ import annotations

import datetime
import html
import json
import re
from typing import Any

import pytest

from infra.config import StackConfig, parse_stack_config
from policies.eks_versions import end_of_standard_support
from policies.pricing import load_prices
from tools.plan.cost import component_of, cost_difference, cost_document, estimate_run
from tools.plan.diff import compare
from tools.plan.graph import (
    ADDED,
    CHANGED,
    dot_source,
    material_changes,
    render_svg,
    resource_key,
)
from tools.plan.offline import OfflineRun, stack_config_values
from tools.plan.record import record, stacks

pytestmark = pytest.mark.slow

DAY = datetime.date(2026, 11, 30)
STACKS = ("dev", "staging", "prod")
COMPONENTS = {
    "network",
    "cluster",
    "database",
    "cache",
    "backups",
    "identity",
    "registry",
    "release",
    # The certificate and the load balancer controller's role (stacks with an edge).
    "edge",
}


@pytest.fixture(scope="module")
def runs() -> dict[str, OfflineRun]:
    return {stack: record(stack) for stack in STACKS}


def config(stack: str) -> StackConfig:
    values, _ = stack_config_values(stack)
    return parse_stack_config(stack, values)


def hourly(block: str, item: str) -> float:
    table = load_prices()
    row = table.price("eu-west-1", block, item)
    assert row is not None, f"{block}/{item}"
    return row.usd * table.hours_per_month


# The DR stack runs in the replica region, which the price table covers only for S3 and KMS.
DR_STACK = "prod-dr"


def test_the_committed_stacks_are_the_ones_estimated() -> None:
    assert tuple(stacks()) == tuple(sorted((*STACKS, DR_STACK)))


def test_a_region_the_table_lacks_is_reported_unpriced_not_guessed() -> None:
    result = estimate_run(record(DR_STACK), DAY)
    assert config(DR_STACK).region == "eu-central-1"
    unpriced = {item.name for item in result.unpriced}
    # The cluster, its node groups and the restored database have no eu-central-1 row.
    assert {"agent-prod-eks", "agent-prod-db"} <= unpriced, sorted(unpriced)
    assert all(line.price.key.startswith("eu-central-1/") for line in result.lines)


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_is_estimated_from_its_plan(runs: dict[str, OfflineRun], stack: str) -> None:
    settings = config(stack)
    result = estimate_run(runs[stack], DAY)
    lines = {(line.name, line.price.key.split("/", 1)[1]): line for line in result.lines}
    prefix = f"agent-{stack}"

    # The control plane: the version's support window on the day of the estimate.
    standard_ends = end_of_standard_support(settings.cluster.version)
    assert standard_ends is not None
    support = "cluster-standard-support" if standard_ends > DAY else "cluster-extended-support"
    assert lines[(f"{prefix}-eks", f"eks/{support}")].monthly == pytest.approx(
        hourly("eks", support)
    )
    # Every node group at its desired size, its range from min to max, first listed type.
    for group in settings.cluster.node_groups:
        line = lines[(f"{prefix}-{group.name}", f"ec2/{group.instance_types[0]}")]
        node = hourly("ec2", group.instance_types[0])
        assert line.monthly == pytest.approx(group.desired_size * node)
        assert (line.low, line.high) == pytest.approx(
            (group.min_size * node, group.max_size * node)
        )
    # The database's class, Multi-AZ when the stack says so.
    suffix = "-multi-az" if settings.database.multi_az else ""
    db = lines[(f"{prefix}-db", f"rds-postgresql/{settings.database.instance_class}{suffix}")]
    assert db.monthly == pytest.approx(
        hourly("rds-postgresql", settings.database.instance_class + suffix)
    )
    # Redis: one node per cache cluster.
    cache = lines[(f"{prefix}-cache", f"elasticache/{settings.cache.node_type}")]
    assert cache.monthly == pytest.approx(
        settings.cache.num_cache_clusters * hourly("elasticache", settings.cache.node_type)
    )
    # One NAT gateway, or one per AZ.
    gateways = [line for (name, key), line in lines.items() if key == "vpc/nat-gateway"]
    assert len(gateways) == (1 if settings.network.nat_gateways == "single" else 3)

    assert result.low <= result.total <= result.high
    # Only what the table does not price, each named: Performance Insights beyond the free
    # week, and prod's copies to the DR region (billed per GB replicated and stored there).
    dr_copies = {f"{prefix}-ecr-replication", f"{prefix}-db-backups-dr"}
    assert all(
        "Performance Insights" in item.reason or item.name in dr_copies for item in result.unpriced
    ), [(item.name, item.reason) for item in result.unpriced]
    # The committed budget holds the committed stack.
    assert settings.cost is not None
    assert result.total <= settings.cost.monthly_budget_usd


def test_the_stacks_cost_in_the_order_of_their_size(runs: dict[str, OfflineRun]) -> None:
    totals = [estimate_run(runs[stack], DAY).total for stack in STACKS]
    assert totals == sorted(totals)


def test_per_component_figures_add_up_to_the_total(runs: dict[str, OfflineRun]) -> None:
    run = runs["prod"]
    result = estimate_run(run, DAY)
    document = cost_document(run, result)
    # The edge's own resources are free (certificate, records, role); its NLB is billed to the
    # release, which applies the EnvoyProxy that asks for it.
    assert set(document["components"]) == COMPONENTS - {"edge"}
    assert any(
        line.type.endswith(":EnvoyProxy") and "network load balancer" in line.item
        for line in result.lines
    )
    assert sum(c["monthly"] for c in document["components"].values()) == pytest.approx(
        result.total, abs=0.05
    )
    assert document["components"]["cluster"]["high"] > document["components"]["cluster"]["monthly"]
    assert [item["name"] for item in document["top"]] == [name for name, _, _ in result.top(5)]
    json.dumps(document)  # plan.json carries it as is


def test_the_difference_between_two_stacks(runs: dict[str, OfflineRun]) -> None:
    prod = cost_document(runs["prod"], estimate_run(runs["prod"], DAY))
    staging = cost_document(runs["staging"], estimate_run(runs["staging"], DAY))
    difference = cost_difference("prod", prod, "staging", staging)
    total = difference["total"]
    assert total["difference"] == pytest.approx(prod["total"] - staging["total"], abs=0.01)
    assert sum(row["difference"] for row in difference["components"].values()) == pytest.approx(
        total["difference"], abs=0.1
    )
    for key in ("low", "high"):
        assert difference[key]["difference"] == pytest.approx(prod[key] - staging[key], abs=0.01)
    assert difference["high"]["difference"] > difference["total"]["difference"]  # 9 nodes vs 4
    assert [b["max"] for b in difference["bounds"]["staging"]] == [4, 4]
    by_resource = {row["resource"]: row for row in difference["resources"]}
    # prod's two extra NAT gateways exist only there: all of their cost is difference.
    extra = by_resource["aws:ec2/natGateway:NatGateway::agent-<stack>-nat-eu-west-1b"]
    assert extra["staging"] == 0
    assert extra["difference"] == extra["prod"] > 0
    # Sorted by the size of the difference.
    sizes = [abs(row["difference"]) for row in difference["resources"]]
    assert sizes == sorted(sizes, reverse=True)


def test_the_picture_names_every_component_and_marks_the_differences(
    runs: dict[str, OfflineRun],
) -> None:
    prod, staging = runs["prod"], runs["staging"]
    changed = material_changes(prod, staging)
    # Tags and references differ everywhere; the resources really configured differently are few.
    assert "aws:eks/nodeGroup:NodeGroup::agent-<stack>-general" in changed
    assert (
        "aws:ec2/routeTableAssociation:RouteTableAssociation::agent-<stack>-public-eu-west-1a"
        not in changed
    )
    added = set(compare(prod, staging).only_in_base)
    # prod's NAT gateways in the other two AZs, and their addresses, are only there.
    assert "aws:ec2/natGateway:NatGateway::agent-<stack>-nat-eu-west-1b" in added
    source = dot_source(prod, added=added, changed=changed, against="staging")
    svg = render_svg(source)
    assert svg.lstrip().startswith("<?xml")
    assert svg.rstrip().endswith("</svg>")
    clusters = re.findall(r"<title>cluster_\d+</title>\n<[^\n]*\n<text[^>]*>([^<]+)</text>", svg)
    components = component_of(prod)
    drawn = _keys(prod)
    assert set(clusters) == COMPONENTS
    assert {components[r.urn] for r in prod.resources if _key(r, prod) in drawn} == COMPONENTS
    assert svg.count(f'fill="{ADDED}"') == len(added & _keys(prod)) >= 4
    assert svg.count(f'fill="{CHANGED}"') == len(changed & _keys(prod))
    # Every drawn resource is in the picture by name (one SVG text per label line).
    text = html.unescape(svg)
    for resource in prod.resources:
        if _key(resource, prod) in drawn:
            assert f">{resource.name}</text>" in text


def _key(resource: Any, run: OfflineRun) -> str:
    return resource_key(resource.type, resource.name, run.stack)


def _keys(run: OfflineRun) -> set[str]:
    return {
        resource_key(r.type, r.name, run.stack)
        for r in run.resources
        if r.custom and not r.type.startswith("pulumi:providers:")
    }
