"""The VPC: three availability zones, public and private subnets, NAT, endpoints, flow logs.

Workloads, the database and the cache live in the private subnets only; the public subnets
hold the NAT gateways and internet-facing load balancers. AWS APIs the pods and nodes call
most (S3, ECR, STS, Secrets Manager) are reached through VPC endpoints, so image pulls,
IRSA token exchanges and secret reads never leave the VPC.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.iam import Account, allow, policy_document, service_trust_policy
from infra.kms import encryption_key, logs_grant
from infra.tags import Tags

AZ_COUNT = 3
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "sts", "secretsmanager")


@dataclass(frozen=True)
class SubnetPlan:
    public: tuple[str, ...]
    private: tuple[str, ...]


def plan_subnets(cidr: str, az_count: int = AZ_COUNT) -> SubnetPlan:
    """Split the VPC into quarters: one large private subnet per AZ (pods take VPC addresses
    with the VPC CNI) and the last quarter cut into small public subnets."""
    network = ipaddress.IPv4Network(cidr)
    quarters = list(network.subnets(prefixlen_diff=2))
    if az_count > 3:
        raise ValueError(f"at most 3 availability zones fit this layout, got {az_count}")
    public_blocks = list(quarters[3].subnets(prefixlen_diff=2))
    return SubnetPlan(
        public=tuple(str(block) for block in public_blocks[:az_count]),
        private=tuple(str(block) for block in quarters[:az_count]),
    )


@dataclass(frozen=True)
class NetworkArgs:
    cidr: str
    nat_per_az: bool
    flow_log_retention_days: int
    account: Account
    tags: Tags


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    vpc_cidr: str
    private_subnet_ids: list[pulumi.Output[str]]
    private_subnet_cidrs: tuple[str, ...]
    public_subnet_ids: list[pulumi.Output[str]]
    availability_zones: list[str]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-platform:network:Network", name, None, opts)
        tags = args.tags
        child = pulumi.ResourceOptions(parent=self)
        zones = aws.get_availability_zones(
            state="available", opts=pulumi.InvokeOptions(parent=self)
        )
        if len(zones.names) < AZ_COUNT:
            raise pulumi.RunError(
                f"region {args.account.region} offers {len(zones.names)} availability zones; "
                f"the network needs {AZ_COUNT}"
            )
        self.availability_zones = list(zones.names[:AZ_COUNT])
        plan = plan_subnets(args.cidr)
        self.vpc_cidr = args.cidr
        self.private_subnet_cidrs = plan.private

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=tags.named(f"{name}-vpc"),
            opts=child,
        )
        # The default group allows all traffic between its members; leave it with no rules.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            ingress=[],
            egress=[],
            tags=tags.named(f"{name}-default-unused"),
            opts=child,
        )
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=tags.named(f"{name}-igw"), opts=child
        )

        public_subnets = [
            aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                cidr_block=block,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags=tags.named(f"{name}-public-{zone}", **{"kubernetes.io/role/elb": "1"}),
                opts=child,
            )
            for zone, block in zip(self.availability_zones, plan.public, strict=True)
        ]
        private_subnets = [
            aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                cidr_block=block,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags=tags.named(
                    f"{name}-private-{zone}", **{"kubernetes.io/role/internal-elb": "1"}
                ),
                opts=child,
            )
            for zone, block in zip(self.availability_zones, plan.private, strict=True)
        ]

        public_routes = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
            tags=tags.named(f"{name}-public"),
            opts=child,
        )
        for zone, subnet in zip(self.availability_zones, public_subnets, strict=True):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}",
                subnet_id=subnet.id,
                route_table_id=public_routes.id,
                opts=child,
            )

        nat_zones = self.availability_zones if args.nat_per_az else self.availability_zones[:1]
        nat_gateways = []
        for zone, subnet in zip(nat_zones, public_subnets, strict=False):
            address = aws.ec2.Eip(
                f"{name}-nat-{zone}",
                domain="vpc",
                tags=tags.named(f"{name}-nat-{zone}"),
                opts=child,
            )
            nat_gateways.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{zone}",
                    allocation_id=address.id,
                    subnet_id=subnet.id,
                    connectivity_type="public",
                    tags=tags.named(f"{name}-nat-{zone}"),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway]),
                )
            )

        private_route_tables = []
        for index, (zone, subnet) in enumerate(
            zip(self.availability_zones, private_subnets, strict=True)
        ):
            # With one NAT gateway every zone shares it; with one per zone, traffic stays local.
            nat = nat_gateways[index if args.nat_per_az else 0]
            table = aws.ec2.RouteTable(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                tags=tags.named(f"{name}-private-{zone}"),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}",
                subnet_id=subnet.id,
                route_table_id=table.id,
                opts=child,
            )
            private_route_tables.append(table)

        self._endpoints(name, args, vpc, private_subnets, private_route_tables)
        self._flow_logs(name, args, vpc)

        self.vpc_id = vpc.id
        self.private_subnet_ids = [subnet.id for subnet in private_subnets]
        self.public_subnet_ids = [subnet.id for subnet in public_subnets]
        self.nat_gateway_count = len(nat_gateways)
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "privateSubnetIds": self.private_subnet_ids,
                "publicSubnetIds": self.public_subnet_ids,
                "natGatewayCount": self.nat_gateway_count,
            }
        )

    def _endpoints(
        self,
        name: str,
        args: NetworkArgs,
        vpc: aws.ec2.Vpc,
        private_subnets: list[aws.ec2.Subnet],
        private_route_tables: list[aws.ec2.RouteTable],
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        region = args.account.region
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in private_route_tables],
            tags=args.tags.named(f"{name}-s3"),
            opts=child,
        )
        endpoint_group = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            description="HTTPS from inside the VPC to the interface endpoints",
            vpc_id=vpc.id,
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    description="HTTPS from the VPC",
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr_blocks=[args.cidr],
                )
            ],
            egress=[],
            tags=args.tags.named(f"{name}-endpoints"),
            opts=child,
        )
        for service in INTERFACE_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[subnet.id for subnet in private_subnets],
                security_group_ids=[endpoint_group.id],
                tags=args.tags.named(f"{name}-{service}"),
                opts=child,
            )

    def _flow_logs(self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc) -> None:
        child = pulumi.ResourceOptions(parent=self)
        group_name = f"/aws/vpc/{name}/flow-logs"
        key = encryption_key(
            f"{name}-flow-logs",
            description=f"VPC flow logs of {name}",
            account=args.account,
            tags=args.tags.named(f"{name}-flow-logs"),
            parent=self,
            grants=[logs_grant(args.account, [group_name])],
        )
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=group_name,
            retention_in_days=args.flow_log_retention_days,
            kms_key_id=key.arn,
            tags=args.tags.named(f"{name}-flow-logs"),
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            description="VPC flow logs deliver to their log group",
            assume_role_policy=service_trust_policy("vpc-flow-logs.amazonaws.com", args.account),
            tags=args.tags.named(f"{name}-flow-logs"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=policy_document(
                [
                    allow(
                        "DeliverToOwnLogGroup",
                        ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                        [group.arn, group.arn.apply(lambda arn: f"{arn}:log-stream:*")],
                    )
                ]
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=args.tags.named(f"{name}-flow-logs"),
            opts=child,
        )
