"""The estimator over a fixed plan and a fixed price table, every figure worked out by hand;
what it cannot price is reported, never guessed; the committed table is well-formed."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from policies.estimate import Billable, Estimate, estimate, money
from policies.pricing import PriceTable, PriceTableError, load_prices, parse_prices

DAY = datetime.date(2026, 11, 30)
ROW = {"source": "https://aws.amazon.com/pricing/", "taken": "2026-11-30"}


def _block(**prices: Any) -> dict[str, Any]:
    return {
        **ROW,
        "prices": {item: {"usd": usd, "per": per} for item, (usd, per) in prices.items()},
    }


TABLE: dict[str, Any] = {
    "currency": "USD",
    "hoursPerMonth": 100,  # round numbers: every figure below is checkable by hand
    "defaultRegion": "eu-west-1",
    "assumptions": {
        "natGatewayDataGbPerMonth": 10,
        "interfaceEndpointDataGbPerMonth": 5,
        "nlbCapacityUnitsPerHour": 2,
        "nlbPublicIpv4Addresses": 3,
        "s3StoredGbPerBucket": 50,
        "ecrStoredGbPerRepository": 4,
        "rdsBackupDailyChangeFraction": 0.1,
        "cacheSnapshotGbPerNode": 2,
        "logIngestGbPerMonth": {"/aws/eks/*": 10, "*": 1},
        "logNeverExpiresMonths": 12,
    },
    "freeTypes": ["aws:iam/*", "aws:ec2/launchTemplate:LaunchTemplate", "kubernetes:*"],
    "regions": {
        "eu-west-1": {
            "eks": _block(**{"cluster-standard-support": (0.1, "hour")}),
            "ec2": {
                **ROW,
                "prices": {"t3.large": {"usd": 0.1, "per": "hour", "vcpu": 2, "memoryGib": 8}},
            },
            "ebs": _block(gp3=(0.1, "GB-month")),
            "vpc": _block(
                **{
                    "nat-gateway": (0.05, "hour"),
                    "nat-gateway-data": (0.05, "GB"),
                    "public-ipv4-address": (0.01, "hour"),
                }
            ),
            "privatelink": _block(
                **{"interface-endpoint-az": (0.01, "hour"), "interface-endpoint-data": (0.01, "GB")}
            ),
            "elb": _block(
                **{
                    "network-load-balancer": (0.02, "hour"),
                    "network-load-balancer-nlcu": (0.01, "hour"),
                }
            ),
            "rds-postgresql": _block(
                **{
                    "db.t4g.large-multi-az": (0.3, "hour"),
                    "gp3-storage-multi-az": (0.2, "GB-month"),
                    "backup-storage": (0.1, "GB-month"),
                }
            ),
            "elasticache": _block(
                **{"cache.t4g.small": (0.04, "hour"), "backup-storage": (0.1, "GB-month")}
            ),
            "kms": _block(**{"customer-managed-key": (1.0, "month")}),
            "secretsmanager": _block(secret=(0.4, "month")),
            "s3": _block(**{"standard-storage": (0.02, "GB-month")}),
            "ecr": _block(storage=(0.1, "GB-month")),
            "cloudwatch-logs": _block(ingestion=(0.5, "GB"), storage=(0.03, "GB-month")),
        },
        "eu-central-1": {"s3": _block(**{"standard-storage": (0.03, "GB-month")})},
    },
}


def table() -> PriceTable:
    return parse_prices(TABLE, "test table")


def res(type_: str, name: str, props: dict[str, Any], **extra: Any) -> Billable:
    return Billable(
        urn=f"urn:pulumi:dev::agent-platform::{type_}::{name}",
        type=type_,
        name=name,
        props=props,
        region=extra.pop("region", "eu-west-1"),
        **extra,
    )


def fixed_plan(version: str = "1.35") -> list[Billable]:
    return [
        res("agent-platform:cluster:Cluster", "c", {}),  # a component: no bill of its own
        res("aws:eks/cluster:Cluster", "eks", {"version": version}),
        res(
            "aws:ec2/launchTemplate:LaunchTemplate",
            "lt",
            {"blockDeviceMappings": [{"ebs": {"volumeSize": 50, "volumeType": "gp3"}}]},
            id="lt-1",
        ),
        res(
            "aws:eks/nodeGroup:NodeGroup",
            "nodes",
            {
                "instanceTypes": ["t3.large", "m5.large"],
                "capacityType": "ON_DEMAND",
                "launchTemplate": {"id": "lt-1", "version": "1"},
                "scalingConfig": {"minSize": 1, "desiredSize": 2, "maxSize": 4},
            },
        ),
        res("aws:ec2/natGateway:NatGateway", "nat", {"connectivityType": "public"}),
        res("aws:ec2/eip:Eip", "eip", {"domain": "vpc"}),
        res(
            "aws:ec2/vpcEndpoint:VpcEndpoint",
            "ecr",
            {"vpcEndpointType": "Interface", "subnetIds": ["a", "b", "c"]},
        ),
        res("aws:ec2/vpcEndpoint:VpcEndpoint", "s3", {"vpcEndpointType": "Gateway"}),
        res(
            "aws:rds/instance:Instance",
            "db",
            {
                "engine": "postgres",
                "identifier": "db",
                "instanceClass": "db.t4g.large",
                "multiAz": True,
                "storageType": "gp3",
                "allocatedStorage": 100,
                "maxAllocatedStorage": 200,
                "backupRetentionPeriod": 7,
                "manageMasterUserPassword": True,
            },
        ),
        res(
            "aws:elasticache/replicationGroup:ReplicationGroup",
            "cache",
            {"nodeType": "cache.t4g.small", "numCacheClusters": 2, "snapshotRetentionLimit": 3},
        ),
        res("aws:kms/key:Key", "key", {}),
        res("aws:secretsmanager/secret:Secret", "secret", {}),
        res("aws:s3/bucket:Bucket", "bucket", {}),
        res("aws:s3/bucket:Bucket", "replica", {}, region="eu-central-1"),
        res("aws:ecr/repository:Repository", "repo", {}),
        res(
            "aws:cloudwatch/logGroup:LogGroup",
            "logs",
            {"name": "/aws/eks/dev/cluster", "retentionInDays": 180},
        ),
        res(
            "kubernetes:helm.sh/v3:Release",
            "ingress",
            {
                "chart": "ingress-nginx",
                "values": {
                    "controller": {
                        "service": {
                            "annotations": {
                                "service.beta.kubernetes.io/aws-load-balancer-type": "nlb"
                            }
                        }
                    }
                },
            },
        ),
        res(
            "kubernetes:helm.sh/v3:Release",
            "service",
            {
                "chart": "./charts/langgraph-agent",
                "values": {
                    "replicaCount": 2,
                    "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6},
                    "resources": {"requests": {"cpu": "500m"}},
                },
            },
        ),
        res("aws:iam/role:Role", "role", {}),
    ]


def by_name(result: Estimate) -> dict[str, float]:
    sums: dict[str, float] = {}
    for line in result.lines:
        sums[line.name] = sums.get(line.name, 0.0) + line.monthly
    return {name: round(cost, 6) for name, cost in sums.items()}


# Each resource's month by hand, at 100 hours a month.
EXPECTED = {
    "eks": 100 * 0.1,
    "nodes": 2 * 100 * 0.1 + 2 * 50 * 0.1,  # first listed type; 50 GB gp3 per node
    "nat": 100 * 0.05 + 10 * 0.05,
    "eip": 100 * 0.01,
    "ecr": 3 * 100 * 0.01 + 5 * 0.01,  # three AZs
    "db": 100 * 0.3 + 100 * 0.2 + 100 * 0.1 * 7 * 0.1 + 0.4,  # + backups + RDS's secret
    "cache": 2 * 100 * 0.04 + 3 * 2 * 0.1,
    "key": 1.0,
    "secret": 0.4,
    "bucket": 50 * 0.02,
    "replica": 50 * 0.03,  # priced in its own region
    "repo": 4 * 0.1,
    "logs": 10 * 0.5 + 10 * (180 * 12 / 365) * 0.03,  # ingested, and kept 180 days
    "ingress": 100 * 0.02 + 2 * 100 * 0.01 + 3 * 100 * 0.01,  # NLB, NLCUs, public IPs
}


def test_the_fixed_plan_costs_what_the_table_says() -> None:
    result = estimate(fixed_plan(), table(), as_of=DAY)
    assert by_name(result) == pytest.approx(EXPECTED)
    assert result.total == pytest.approx(sum(EXPECTED.values()))
    assert result.unpriced == []
    # Free: the launch template, the gateway endpoint, the service release, the IAM role.
    assert result.free == 4
    assert [line.price.key for line in result.lines if line.name == "replica"] == [
        "eu-central-1/s3/standard-storage"
    ]


def test_what_scales_has_a_range() -> None:
    result = estimate(fixed_plan(), table(), as_of=DAY)
    nodes_low = 1 * 100 * 0.1 + 1 * 50 * 0.1
    nodes_high = 4 * 100 * 0.1 + 4 * 50 * 0.1
    storage_high = 200 * 0.2  # up to maxAllocatedStorage
    total = sum(EXPECTED.values())
    assert result.low == pytest.approx(total - EXPECTED["nodes"] + nodes_low)
    assert result.high == pytest.approx(
        total - EXPECTED["nodes"] + nodes_high - 100 * 0.2 + storage_high
    )
    node_bound, pods = result.bounds
    assert (node_bound.minimum, node_bound.expected, node_bound.maximum) == (1, 2, 4)
    assert (pods.minimum, pods.expected, pods.maximum) == (2, 2, 6)
    assert "3 vCPU at the maximum" in pods.detail
    assert "fits in the node groups' 8 vCPU" in pods.detail


def test_the_support_window_sets_the_control_plane_price() -> None:
    extended = copy.deepcopy(TABLE)
    extended["regions"]["eu-west-1"]["eks"]["prices"]["cluster-extended-support"] = {
        "usd": 0.6,
        "per": "hour",
    }
    prices = parse_prices(extended)
    # policies/eks_versions.py: 1.33 leaves standard support on 2026-07-29.
    before = estimate(fixed_plan("1.33"), prices, as_of=datetime.date(2026, 7, 28))
    after = estimate(fixed_plan("1.33"), prices, as_of=datetime.date(2026, 7, 29))
    assert by_name(before)["eks"] == pytest.approx(10.0)
    assert by_name(after)["eks"] == pytest.approx(60.0)
    assert "EXTENDED support" in next(line.item for line in after.lines if line.name == "eks")
    gone = estimate(fixed_plan("1.33"), prices, as_of=datetime.date(2027, 7, 29))
    assert [u.reason for u in gone.unpriced] == ["EKS 1.33 is past extended support (2027-07-29)"]


def test_what_the_table_lacks_is_reported_unpriced_not_guessed() -> None:
    plan = [
        *fixed_plan("1.29"),
        res("aws:sagemaker/endpoint:Endpoint", "model", {}),
        res(
            "aws:eks/nodeGroup:NodeGroup",
            "gpu",
            {"instanceTypes": ["p5.48xlarge"], "scalingConfig": {"desiredSize": 1}},
        ),
        res("aws:kms/key:Key", "elsewhere", {}, region="ap-south-1"),
    ]
    result = estimate(plan, table(), as_of=DAY)
    reasons = {item.name: item.reason for item in result.unpriced}
    assert reasons == {
        "eks": "EKS version 1.29 is not in policies/eks_versions.py",
        "model": "type not in the table",
        "gpu": "no price for ec2/p5.48xlarge in eu-west-1",
        "elsewhere": "no price for kms/customer-managed-key in ap-south-1",
    }
    # Nothing of an unpriced resource is counted.
    assert {"eks", "model", "gpu", "elsewhere"}.isdisjoint(by_name(result))


def test_an_unannotated_load_balancer_is_not_taken_for_an_nlb() -> None:
    service = res(
        "kubernetes:core/v1:Service",
        "lb",
        {"spec": {"type": "LoadBalancer"}, "metadata": {"annotations": {}}},
    )
    result = estimate([service], table(), as_of=DAY)
    assert [u.reason for u in result.unpriced] == [
        "a Classic Load Balancer (no aws-load-balancer-type: nlb) is not priced"
    ]


def test_the_gateways_proxies_are_priced_as_the_controllers_nlb() -> None:
    """H4: the edge's NLB is the Envoy proxies' Service, of the AWS Load Balancer Controller's
    class (no aws-load-balancer-type annotation needed)."""
    proxy = res(
        "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy",
        "edge",
        {
            "spec": {
                "provider": {
                    "kubernetes": {
                        "envoyService": {
                            "type": "LoadBalancer",
                            "loadBalancerClass": "service.k8s.aws/nlb",
                            "annotations": {
                                "service.beta.kubernetes.io/aws-load-balancer-scheme": (
                                    "internet-facing"
                                )
                            },
                        }
                    }
                }
            }
        },
    )
    result = estimate([proxy], table(), as_of=DAY)
    assert result.unpriced == []
    items = [line.item for line in result.lines]
    assert items[0] == "network load balancer (created by the cluster)"
    assert any("public IPv4" in item for item in items)


def test_the_top_contributors_are_the_most_expensive_resources() -> None:
    result = estimate(fixed_plan(), table(), as_of=DAY)
    expected = sorted(EXPECTED.items(), key=lambda item: -item[1])[:5]
    assert [(name, round(cost, 6)) for name, _, cost in result.top(5)] == [
        (name, round(cost, 6)) for name, cost in expected
    ]


def test_money_reads_like_a_bill() -> None:
    assert (money(2325.4), money(7.5), money(0)) == ("$2,325", "$7.50", "$0.00")


def test_a_malformed_row_is_named() -> None:
    broken = copy.deepcopy(TABLE)
    broken["regions"]["eu-west-1"]["ec2"]["prices"]["t3.large"]["usd"] = -1
    with pytest.raises(PriceTableError, match=r"regions\.eu-west-1\.ec2\.prices\.t3\.large\.usd"):
        parse_prices(broken)
    missing = copy.deepcopy(TABLE)
    del missing["regions"]["eu-west-1"]["kms"]["source"]
    with pytest.raises(PriceTableError, match=r"regions\.eu-west-1\.kms\.source"):
        parse_prices(missing)


def test_the_committed_table_names_a_source_and_date_for_every_row() -> None:
    prices = load_prices()
    rows = prices.rows()
    assert len(rows) > 40
    for row in rows:
        assert row.source.startswith("https://aws.amazon.com/"), row.key
        assert row.taken <= datetime.date.today(), row.key
    # The rows a published page confirmed are told apart from those to check.
    assert prices.price("eu-west-1", "eks", "cluster-extended-support").verified  # type: ignore[union-attr]
    assert not prices.price("eu-west-1", "ec2", "m6i.xlarge").verified  # type: ignore[union-attr]
    assert prices.default_region in prices.regions


def test_volumes_a_release_claims_are_priced_as_ebs() -> None:
    values = {
        "prometheus": {
            "prometheusSpec": {
                "storageSpec": {
                    "volumeClaimTemplate": {"spec": {"resources": {"requests": {"storage": "50G"}}}}
                }
            }
        },
        "grafana": {"persistence": {"enabled": True, "size": "10G"}},
        "loki": {"persistence": {"enabled": False, "size": "100G"}},
    }
    release = res(
        "kubernetes:helm.sh/v3:Release",
        "monitoring",
        {"chart": "kube-prometheus-stack", "values": values},
    )
    result = estimate([release], table(), as_of=DAY)
    assert [(line.item, line.monthly) for line in result.lines] == [
        ("50 GB volume (values.prometheus.prometheusSpec.storageSpec.volumeClaimTemplate)", 5.0),
        ("10 GB volume (values.grafana.persistence)", 1.0),
    ]
