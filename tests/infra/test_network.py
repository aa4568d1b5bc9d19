"""The VPC per stack: 3 AZs, private subnets, NAT per AZ in prod, endpoints, flow logs."""

from __future__ import annotations

import ipaddress

from infra.config import StackConfig
from infra.network import INTERFACE_ENDPOINTS, plan_subnets
from tests.infra.support import by_name
from tools.plan.offline import OfflineRun

SUBNET = "aws:ec2/subnet:Subnet"
NAT = "aws:ec2/natGateway:NatGateway"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"


def test_subnet_plan_fits_three_zones_without_overlap() -> None:
    plan = plan_subnets("10.30.0.0/16")
    blocks = [ipaddress.IPv4Network(cidr) for cidr in (*plan.private, *plan.public)]
    assert len(plan.private) == len(plan.public) == 3
    for index, block in enumerate(blocks):
        assert block.subnet_of(ipaddress.IPv4Network("10.30.0.0/16"))
        assert not any(block.overlaps(other) for other in blocks[index + 1 :])
    # Private subnets hold the pods (VPC CNI): each much larger than a public one.
    assert all(ipaddress.ip_network(cidr).prefixlen == 18 for cidr in plan.private)
    assert all(ipaddress.ip_network(cidr).prefixlen == 20 for cidr in plan.public)


def test_vpc_spans_three_zones_with_public_and_private_subnets(
    run: OfflineRun, config: StackConfig
) -> None:
    vpc = run.one("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == config.network.cidr
    assert vpc.inputs["enableDnsHostnames"] is True
    subnets = run.of_type(SUBNET)
    public = [s for s in subnets if "-public-" in s.name]
    private = [s for s in subnets if "-private-" in s.name]
    assert len(public) == len(private) == 3
    assert len({s.inputs["availabilityZone"] for s in private}) == 3
    assert len({s.inputs["availabilityZone"] for s in public}) == 3
    # No subnet hands out public addresses, not even the public ones.
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    assert all(s.inputs["tags"]["kubernetes.io/role/internal-elb"] == "1" for s in private)


def test_nat_gateway_per_zone_only_in_prod(run: OfflineRun, stack: str) -> None:
    nats = run.of_type(NAT)
    expected = 3 if stack == "prod" else 1
    assert len(nats) == expected
    assert len(run.of_type("aws:ec2/eip:Eip")) == expected
    public_subnet_ids = {s.id for s in run.of_type(SUBNET) if "-public-" in s.name}
    assert {nat.inputs["subnetId"] for nat in nats} <= public_subnet_ids
    assert len({nat.inputs["subnetId"] for nat in nats}) == expected
    # Each private zone routes to the internet through a NAT gateway.
    private_tables = [t for t in run.of_type(ROUTE_TABLE) if "-private-" in t.name]
    assert len(private_tables) == 3
    targets = {t.inputs["routes"][0]["natGatewayId"] for t in private_tables}
    assert targets == {nat.id for nat in nats}
    assert all(t.inputs["routes"][0]["cidrBlock"] == "0.0.0.0/0" for t in private_tables)


def test_endpoints_for_s3_ecr_sts_and_secrets_manager(run: OfflineRun) -> None:
    endpoints = run.of_type(ENDPOINT)
    services = {
        e.inputs["serviceName"].removeprefix("com.amazonaws.eu-west-1."): e for e in endpoints
    }
    assert set(services) == {"s3", *INTERFACE_ENDPOINTS}
    s3 = services["s3"]
    assert s3.inputs["vpcEndpointType"] == "Gateway"
    assert len(s3.inputs["routeTableIds"]) == 3
    for service in INTERFACE_ENDPOINTS:
        endpoint = services[service]
        assert endpoint.inputs["vpcEndpointType"] == "Interface"
        assert endpoint.inputs["privateDnsEnabled"] is True
        assert len(endpoint.inputs["subnetIds"]) == 3


def test_interface_endpoints_accept_https_from_the_vpc_only(
    run: OfflineRun, config: StackConfig
) -> None:
    group = next(
        g
        for g in run.of_type("aws:ec2/securityGroup:SecurityGroup")
        if g.name.endswith("-endpoints")
    )
    (rule,) = group.inputs["ingress"]
    assert (rule["fromPort"], rule["toPort"], rule["protocol"]) == (443, 443, "tcp")
    assert rule["cidrBlocks"] == [config.network.cidr]
    assert group.inputs["egress"] == []


def test_default_security_group_has_no_rules(run: OfflineRun) -> None:
    group = run.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert group.inputs["ingress"] == []
    assert group.inputs["egress"] == []


def test_flow_logs_capture_all_traffic_into_an_encrypted_group(
    run: OfflineRun, config: StackConfig
) -> None:
    flow_log = run.one("aws:ec2/flowLog:FlowLog")
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    groups = {g.outputs["arn"]: g for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")}
    group = groups[flow_log.inputs["logDestination"]]
    assert group.inputs["retentionInDays"] == config.network.flow_log_retention_days
    keys = {k.outputs["arn"] for k in run.of_type("aws:kms/key:Key")}
    assert group.inputs["kmsKeyId"] in keys
    roles = {r.outputs["arn"]: r for r in run.of_type("aws:iam/role:Role")}
    assert flow_log.inputs["iamRoleArn"] in roles


def test_flow_log_retention_differs_per_stack(run: OfflineRun, stack: str) -> None:
    group = by_name(run, "aws:cloudwatch/logGroup:LogGroup")[f"agent-{stack}-flow-logs"]
    assert group.inputs["retentionInDays"] == {"dev": 14, "staging": 30, "prod": 365}[stack]
