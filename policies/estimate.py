"""A stack's monthly cost from the resources it declares and the price table.

One estimator for every caller: `make plan` (tools/plan) reports it per resource and component,
and the `stack-monthly-budget` policy compares its total with the stack's budget, so the figure
a reviewer reads is the figure a budget is judged by.

The estimate is on-demand list prices times a month (`hoursPerMonth`) at the expected size
(node groups at their desired size, storage as allocated), with a low and high figure for what
scales: node groups between their minimum and maximum size, database storage up to its
autoscaling ceiling. Usage the program cannot know (traffic, stored data, log volume) comes from
the table's `assumptions`, which every report prints. A resource type with no rule here and not
listed as free is returned as unpriced, with the reason, never guessed.
"""

from __future__ import annotations

import datetime
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.eks_versions import end_of_standard_support
from policies.pricing import Price, PriceTable

# Types of these packages are provider resources; anything else is a component (no bill).
PROVIDER_PACKAGES = frozenset({"aws", "kubernetes", "random", "tls"})
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
SERVICE = "kubernetes:core/v1:Service"
# Envoy Gateway's proxy configuration: its envoyService becomes the Gateway's load balancer.
ENVOY_PROXY = "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy"
# A Service of this class is an NLB of the AWS Load Balancer Controller, whatever its
# annotations (kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/nlb/).
LBC_NLB_CLASS = "service.k8s.aws/nlb"
LB_TYPE_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-type"
LB_SCHEME_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-scheme"
LB_INTERNAL_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-internal"
# EKS's default root volume when a node group has neither a launch template nor diskSize.
EKS_DEFAULT_DISK_GB = 20
FREE_PI_RETENTION_DAYS = 7


@dataclass(frozen=True)
class Billable:
    """One declared resource as the estimator reads it: its inputs (or outputs), its provider's
    ID and the region its provider targets."""

    urn: str
    type: str
    name: str
    props: Mapping[str, Any]
    region: str
    id: str | None = None
    custom: bool | None = None  # None: judged by the type's package

    @property
    def is_component(self) -> bool:
        if self.type.startswith("pulumi:"):
            return True
        if self.custom is not None:
            return not self.custom
        return self.type.split(":", 1)[0] not in PROVIDER_PACKAGES


@dataclass(frozen=True)
class Line:
    """One priced item of a resource: `quantity` units a month at `price`, with the quantities
    at the low and high end of what scales."""

    urn: str
    type: str
    name: str
    item: str
    quantity: float
    price: Price
    low_quantity: float | None = None
    high_quantity: float | None = None

    @property
    def monthly(self) -> float:
        return self.quantity * self.price.usd

    @property
    def low(self) -> float:
        return (self.quantity if self.low_quantity is None else self.low_quantity) * self.price.usd

    @property
    def high(self) -> float:
        quantity = self.quantity if self.high_quantity is None else self.high_quantity
        return quantity * self.price.usd


@dataclass(frozen=True)
class Unpriced:
    urn: str
    type: str
    name: str
    reason: str


@dataclass(frozen=True)
class Bound:
    """What autoscales, with its bounds: a node group (nodes) or the service (pods)."""

    kind: str
    name: str
    minimum: int
    expected: int
    maximum: int
    detail: str


@dataclass
class Estimate:
    as_of: datetime.date
    lines: list[Line] = field(default_factory=list)
    unpriced: list[Unpriced] = field(default_factory=list)
    free: int = 0
    bounds: list[Bound] = field(default_factory=list)
    assumptions: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(line.monthly for line in self.lines)

    @property
    def low(self) -> float:
        return sum(line.low for line in self.lines)

    @property
    def high(self) -> float:
        return sum(line.high for line in self.lines)

    def by_resource(self) -> dict[str, float]:
        """Monthly cost per resource URN, largest first."""
        sums: dict[str, float] = defaultdict(float)
        for line in self.lines:
            sums[line.urn] += line.monthly
        return dict(sorted(sums.items(), key=lambda item: (-item[1], item[0])))

    def top(self, count: int = 5) -> list[tuple[str, str, float]]:
        """The `count` most expensive resources: (name, type, monthly)."""
        named = {line.urn: (line.name, line.type) for line in self.lines}
        return [(*named[urn], cost) for urn, cost in list(self.by_resource().items())[:count]]


class _NotPriced(Exception):
    """A resource (or one of its items) the table cannot price; the message says why."""


@dataclass
class _Context:
    table: PriceTable
    as_of: datetime.date
    by_id: dict[str, Billable]
    by_identifier: dict[str, Billable]
    service_chart: str
    missing: list[Unpriced] = field(default_factory=list)

    @property
    def hours(self) -> float:
        return self.table.hours_per_month

    def price(self, resource: Billable, block: str, item: str) -> Price:
        found = self.table.price(resource.region, block, item)
        if found is None:
            raise _NotPriced(f"no price for {block}/{item} in {resource.region}")
        return found

    def part_price(self, resource: Billable, block: str, item: str, part: str) -> Price | None:
        """The price of one part of a resource; a missing one leaves that part unpriced (and
        reported) while the rest of the resource is still counted."""
        found = self.table.price(resource.region, block, item)
        if found is None:
            self.missing.append(
                Unpriced(
                    resource.urn,
                    resource.type,
                    resource.name,
                    f"{part}: no price for {block}/{item} in {resource.region}",
                )
            )
        return found


def _number(value: Any, default: float | None = None) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


def _get(props: Any, path: str) -> Any:
    value = props
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _line(
    resource: Billable,
    item: str,
    quantity: float,
    price: Price,
    low: float | None = None,
    high: float | None = None,
) -> Line:
    return Line(resource.urn, resource.type, resource.name, item, quantity, price, low, high)


Rule = Callable[[Billable, _Context], list[Line]]


def _extended_support_ends(standard_ends: datetime.date) -> datetime.date:
    """Extended support lasts 12 months after standard support (the EKS version lifecycle,
    docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html)."""
    try:
        return standard_ends.replace(year=standard_ends.year + 1)
    except ValueError:  # 29 February
        return standard_ends.replace(year=standard_ends.year + 1, day=28)


def _eks_cluster(resource: Billable, ctx: _Context) -> list[Line]:
    version = str(_get(resource.props, "version") or "")
    standard_ends = end_of_standard_support(version)
    if standard_ends is None:
        raise _NotPriced(f"EKS version {version or '(unset)'} is not in policies/eks_versions.py")
    extended_ends = _extended_support_ends(standard_ends)
    if ctx.as_of < standard_ends:
        item = "cluster-standard-support"
        label = f"control plane, {version} in standard support until {standard_ends}"
    elif ctx.as_of < extended_ends:
        item = "cluster-extended-support"
        label = f"control plane, {version} in EXTENDED support since {standard_ends}"
    else:
        raise _NotPriced(f"EKS {version} is past extended support ({extended_ends})")
    return [_line(resource, label, ctx.hours, ctx.price(resource, "eks", item))]


def _root_volume(resource: Billable, ctx: _Context) -> tuple[float, str]:
    template_id = _get(resource.props, "launchTemplate.id")
    template = ctx.by_id.get(str(template_id)) if template_id else None
    if template is not None:
        mappings = _get(template.props, "blockDeviceMappings") or []
        for mapping in mappings:
            ebs = _get(mapping, "ebs") or {}
            size = _number(_get(ebs, "volumeSize"))
            if size:
                return size, str(_get(ebs, "volumeType") or "gp2")
    return _number(_get(resource.props, "diskSize"), EKS_DEFAULT_DISK_GB) or 0.0, "gp2"


def _node_group(resource: Billable, ctx: _Context) -> list[Line]:
    types = [t for t in (_get(resource.props, "instanceTypes") or []) if isinstance(t, str)]
    if not types:
        raise _NotPriced("no instanceTypes")
    if _get(resource.props, "capacityType") == "SPOT":
        raise _NotPriced("Spot capacity: prices move by the hour and are not in the table")
    scaling = _get(resource.props, "scalingConfig") or {}
    desired = _number(_get(scaling, "desiredSize"))
    minimum = _number(_get(scaling, "minSize"), desired)
    maximum = _number(_get(scaling, "maxSize"), desired)
    if desired is None or minimum is None or maximum is None:
        raise _NotPriced("scalingConfig.desiredSize is not known")
    # On-demand managed node groups launch the first listed type while it has capacity, so
    # the first type is the one priced ("Managed node groups use the order of instance types
    # passed in the API to determine which instance type to use first when fulfilling
    # On-Demand capacity": docs.aws.amazon.com/eks/latest/userguide/managed-node-groups.html).
    instance = ctx.price(resource, "ec2", types[0])
    hours = ctx.hours
    lines = [
        _line(
            resource,
            f"{types[0]} nodes ({desired:g}, {minimum:g}-{maximum:g})",
            desired * hours,
            instance,
            minimum * hours,
            maximum * hours,
        )
    ]
    size_gb, volume_type = _root_volume(resource, ctx)
    volume = ctx.part_price(resource, "ebs", volume_type, "root volumes")
    if volume is not None:
        lines.append(
            _line(
                resource,
                f"{volume_type} root volumes, {size_gb:g} GB per node",
                desired * size_gb,
                volume,
                minimum * size_gb,
                maximum * size_gb,
            )
        )
    return lines


def _nat_gateway(resource: Billable, ctx: _Context) -> list[Line]:
    if _get(resource.props, "connectivityType") == "private":
        raise _NotPriced("private NAT gateways are not in the table")
    data = ctx.table.assumptions.nat_gateway_data_gb_per_month
    return [
        _line(resource, "NAT gateway", ctx.hours, ctx.price(resource, "vpc", "nat-gateway")),
        _line(
            resource,
            f"{data:g} GB processed (assumed)",
            data,
            ctx.price(resource, "vpc", "nat-gateway-data"),
        ),
    ]


def _eip(resource: Billable, ctx: _Context) -> list[Line]:
    price = ctx.price(resource, "vpc", "public-ipv4-address")
    return [_line(resource, "public IPv4 address", ctx.hours, price)]


def _vpc_endpoint(resource: Billable, ctx: _Context) -> list[Line]:
    kind = _get(resource.props, "vpcEndpointType") or "Gateway"
    if kind == "Gateway":
        return []  # S3 and DynamoDB gateway endpoints carry no charge
    if kind != "Interface":
        raise _NotPriced(f"{kind} endpoints are not in the table")
    zones = len(_get(resource.props, "subnetIds") or []) or 1
    data = ctx.table.assumptions.interface_endpoint_data_gb_per_month
    return [
        _line(
            resource,
            f"interface endpoint in {zones} AZ",
            zones * ctx.hours,
            ctx.price(resource, "privatelink", "interface-endpoint-az"),
        ),
        _line(
            resource,
            f"{data:g} GB processed (assumed)",
            data,
            ctx.price(resource, "privatelink", "interface-endpoint-data"),
        ),
    ]


def _load_balancer_lines(
    resource: Billable,
    ctx: _Context,
    annotations: Mapping[str, Any],
    load_balancer_class: Any = None,
) -> list[Line]:
    """A Service of type LoadBalancer: an NLB when annotated so (in-tree `nlb` or the AWS Load
    Balancer Controller's `external`/`nlb-ip`); without the annotation the in-tree controller
    makes a Classic Load Balancer, which the table does not price. Annotations: see
    kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/annotations/.
    An internet-facing NLB holds a public IPv4 address in each of its subnets' AZs."""
    kind = str(annotations.get(LB_TYPE_ANNOTATION, ""))
    if load_balancer_class == LBC_NLB_CLASS:
        kind = "external"
    if kind not in ("nlb", "external", "nlb-ip"):
        raise _NotPriced("a Classic Load Balancer (no aws-load-balancer-type: nlb) is not priced")
    assumptions = ctx.table.assumptions
    internal = annotations.get(LB_SCHEME_ANNOTATION) == "internal" or str(
        annotations.get(LB_INTERNAL_ANNOTATION, "")
    ).lower() in ("true", "0.0.0.0/0")
    lines = [
        _line(
            resource,
            "network load balancer (created by the cluster)",
            ctx.hours,
            ctx.price(resource, "elb", "network-load-balancer"),
        ),
        _line(
            resource,
            f"{assumptions.nlb_capacity_units_per_hour:g} NLCU (assumed)",
            assumptions.nlb_capacity_units_per_hour * ctx.hours,
            ctx.price(resource, "elb", "network-load-balancer-nlcu"),
        ),
    ]
    if not internal and assumptions.nlb_public_ipv4_addresses:
        count = assumptions.nlb_public_ipv4_addresses
        lines.append(
            _line(
                resource,
                f"{count} public IPv4 addresses of the load balancer",
                count * ctx.hours,
                ctx.price(resource, "vpc", "public-ipv4-address"),
            )
        )
    return lines


_STORAGE = re.compile(r"^(\d+(?:\.\d+)?)(Gi|G|Ti|T|Mi|M)?$")
_GB_PER_UNIT = {"Gi": 1.073741824, "G": 1.0, "Ti": 1099.511627776, "T": 1000.0}


def _storage_gb(quantity: Any) -> float | None:
    """A Kubernetes storage quantity ("50Gi", "10G") in GB; None when not one."""
    match = _STORAGE.match(str(quantity)) if quantity is not None else None
    if match is None:
        return None
    number, unit = float(match.group(1)), match.group(2) or ""
    if unit in ("Mi", "M", ""):
        return number / (1024**3 if unit == "" else 1024 if unit == "Mi" else 1000)
    return number * _GB_PER_UNIT[unit]


def persistent_volumes(values: Any, path: str = "values") -> list[tuple[str, float]]:
    """The volumes a chart's values claim: a `volumeClaimTemplate` (Prometheus, Alertmanager)
    or an enabled `persistence` block with a `size`, as (where, GB), one replica each."""
    found: list[tuple[str, float]] = []
    if isinstance(values, Mapping):
        template = _get(values, "volumeClaimTemplate.spec.resources.requests.storage")
        gb = _storage_gb(template)
        if gb:
            found.append((f"{path}.volumeClaimTemplate", gb))
        persistence = values.get("persistence")
        if isinstance(persistence, Mapping) and persistence.get("enabled") is True:
            gb = _storage_gb(persistence.get("size"))
            if gb:
                found.append((f"{path}.persistence", gb))
        for key, item in values.items():
            if key not in ("volumeClaimTemplate", "persistence"):
                found += persistent_volumes(item, f"{path}.{key}")
    return found


def _helm_release(resource: Billable, ctx: _Context) -> list[Line]:
    """A release's pods run on the node groups, already priced. What it makes AWS create is
    priced here: the ingress controller's load balancer, and volumes its values claim (EBS
    through the EBS CSI driver, priced as gp3)."""
    lines: list[Line] = []
    volumes = persistent_volumes(_get(resource.props, "values") or {})
    if volumes:
        price = ctx.part_price(resource, "ebs", "gp3", "persistent volumes")
        if price is not None:
            lines += [
                _line(resource, f"{gb:.0f} GB volume ({where})", gb, price) for where, gb in volumes
            ]
    chart = str(_get(resource.props, "chart") or "").rstrip("/").rsplit("/", 1)[-1]
    if chart != "ingress-nginx":
        return lines
    service = _get(resource.props, "values.controller.service") or {}
    if _get(service, "enabled") is False or _get(service, "type") not in (None, "LoadBalancer"):
        return lines
    return lines + _load_balancer_lines(resource, ctx, _get(service, "annotations") or {})


def _service(resource: Billable, ctx: _Context) -> list[Line]:
    if _get(resource.props, "spec.type") != "LoadBalancer":
        return []
    return _load_balancer_lines(
        resource,
        ctx,
        _get(resource.props, "metadata.annotations") or {},
        _get(resource.props, "spec.loadBalancerClass"),
    )


def _envoy_proxy(resource: Billable, ctx: _Context) -> list[Line]:
    """The Gateway's proxies behind a Service of type LoadBalancer (Envoy Gateway's default):
    the AWS Load Balancer Controller makes it an NLB (infra/edge.py)."""
    service = _get(resource.props, "spec.provider.kubernetes.envoyService") or {}
    if _get(service, "type") not in (None, "LoadBalancer"):
        return []
    return _load_balancer_lines(
        resource,
        ctx,
        _get(service, "annotations") or {},
        _get(service, "loadBalancerClass"),
    )


def _rds_instance(resource: Billable, ctx: _Context) -> list[Line]:
    props = resource.props
    engine = _get(props, "engine")
    source = ctx.by_identifier.get(str(_get(props, "replicateSourceDb") or ""))
    if engine is None and source is not None:
        engine = _get(source.props, "engine")
    if engine != "postgres":
        raise _NotPriced(f"engine {engine!r}: only PostgreSQL is in the table")
    instance_class = str(_get(props, "instanceClass") or "")
    multi_az = _get(props, "multiAz") is True
    suffix = "-multi-az" if multi_az else ""
    deployment = "Multi-AZ" if multi_az else "single-AZ"
    lines = [
        _line(
            resource,
            f"{instance_class} {deployment}",
            ctx.hours,
            ctx.price(resource, "rds-postgresql", instance_class + suffix),
        )
    ]
    storage_props = props if _get(props, "allocatedStorage") else (source.props if source else {})
    allocated = _number(_get(storage_props, "allocatedStorage"))
    storage_type = str(_get(props, "storageType") or _get(storage_props, "storageType") or "gp2")
    storage = ctx.part_price(
        resource, "rds-postgresql", f"{storage_type}-storage{suffix}", "storage"
    )
    if allocated and storage is not None:
        ceiling = _number(_get(storage_props, "maxAllocatedStorage"), allocated) or allocated
        lines.append(
            _line(
                resource,
                f"{storage_type} storage {allocated:g} GB (grows to {ceiling:g})",
                allocated,
                storage,
                allocated,
                max(allocated, ceiling),
            )
        )
    retention = _number(_get(props, "backupRetentionPeriod"), 0) or 0
    backups = ctx.part_price(resource, "rds-postgresql", "backup-storage", "backups")
    if allocated and retention and source is None and backups is not None:
        change = ctx.table.assumptions.rds_backup_daily_change_fraction
        lines.append(
            _line(
                resource,
                f"backups beyond the free allowance ({retention:g} days x {change:g} a day)",
                allocated * change * retention,
                backups,
            )
        )
    if _get(props, "manageMasterUserPassword") is True:
        lines.append(
            _line(
                resource,
                "master password secret (managed by RDS)",
                1,
                ctx.price(resource, "secretsmanager", "secret"),
            )
        )
    insights = _number(_get(props, "performanceInsightsRetentionPeriod"), 0) or 0
    if _get(props, "performanceInsightsEnabled") is True and insights > FREE_PI_RETENTION_DAYS:
        ctx.missing.append(
            Unpriced(
                resource.urn,
                resource.type,
                resource.name,
                f"Performance Insights retention of {insights:g} days (7 are free)",
            )
        )
    return lines


def _replication_group(resource: Billable, ctx: _Context) -> list[Line]:
    props = resource.props
    node_type = str(_get(props, "nodeType") or "")
    shards = _number(_get(props, "numNodeGroups"), 1) or 1
    replicas = _number(_get(props, "replicasPerNodeGroup"))
    nodes = _number(_get(props, "numCacheClusters"))
    if nodes is None:
        nodes = shards * ((replicas or 0) + 1)
    lines = [
        _line(
            resource,
            f"{nodes:g} x {node_type}",
            nodes * ctx.hours,
            ctx.price(resource, "elasticache", node_type),
        )
    ]
    retention = _number(_get(props, "snapshotRetentionLimit"), 0) or 0
    if retention:
        gb = shards * retention * ctx.table.assumptions.cache_snapshot_gb_per_node
        lines.append(
            _line(
                resource,
                f"{retention:g} daily snapshots (assumed size)",
                gb,
                ctx.price(resource, "elasticache", "backup-storage"),
            )
        )
    return lines


def _kms_key(resource: Billable, ctx: _Context) -> list[Line]:
    price = ctx.price(resource, "kms", "customer-managed-key")
    return [_line(resource, "customer managed key", 1, price)]


def _secret(resource: Billable, ctx: _Context) -> list[Line]:
    return [_line(resource, "secret", 1, ctx.price(resource, "secretsmanager", "secret"))]


def _bucket(resource: Billable, ctx: _Context) -> list[Line]:
    gb = ctx.table.assumptions.s3_stored_gb_per_bucket
    price = ctx.price(resource, "s3", "standard-storage")
    return [_line(resource, f"{gb:g} GB stored (assumed)", gb, price)]


def _repository(resource: Billable, ctx: _Context) -> list[Line]:
    gb = ctx.table.assumptions.ecr_stored_gb_per_repository
    return [
        _line(resource, f"{gb:g} GB of images (assumed)", gb, ctx.price(resource, "ecr", "storage"))
    ]


def _log_group(resource: Billable, ctx: _Context) -> list[Line]:
    name = str(_get(resource.props, "name") or resource.name)
    ingest = ctx.table.log_ingest_gb(name)
    retention = _number(_get(resource.props, "retentionInDays"), 0) or 0
    months = (
        retention * 12 / 365 if retention else float(ctx.table.assumptions.log_never_expires_months)
    )
    stored = ingest * months
    kept = f"{retention:g} days" if retention else "never expires"
    return [
        _line(
            resource,
            f"{ingest:g} GB ingested (assumed)",
            ingest,
            ctx.price(resource, "cloudwatch-logs", "ingestion"),
        ),
        _line(
            resource,
            f"{stored:.0f} GB stored ({kept})",
            stored,
            ctx.price(resource, "cloudwatch-logs", "storage"),
        ),
    ]


RULES: dict[str, Rule] = {
    "aws:eks/cluster:Cluster": _eks_cluster,
    "aws:eks/nodeGroup:NodeGroup": _node_group,
    "aws:ec2/natGateway:NatGateway": _nat_gateway,
    "aws:ec2/eip:Eip": _eip,
    "aws:ec2/vpcEndpoint:VpcEndpoint": _vpc_endpoint,
    HELM_RELEASE: _helm_release,
    SERVICE: _service,
    ENVOY_PROXY: _envoy_proxy,
    "aws:rds/instance:Instance": _rds_instance,
    "aws:elasticache/replicationGroup:ReplicationGroup": _replication_group,
    "aws:kms/key:Key": _kms_key,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:s3/bucketV2:BucketV2": _bucket,
    "aws:ecr/repository:Repository": _repository,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
}


def _cpu(quantity: Any) -> float | None:
    """A Kubernetes CPU quantity ("250m", "1", 2) in cores."""
    if isinstance(quantity, int | float) and not isinstance(quantity, bool):
        return float(quantity)
    if isinstance(quantity, str) and quantity:
        try:
            return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)
        except ValueError:
            return None
    return None


def _bounds(resources: Sequence[Billable], ctx: _Context) -> list[Bound]:
    bounds: list[Bound] = []
    capacity_at_max = 0.0
    for resource in resources:
        if resource.type != "aws:eks/nodeGroup:NodeGroup":
            continue
        scaling = _get(resource.props, "scalingConfig") or {}
        sizes = [_number(_get(scaling, key)) for key in ("minSize", "desiredSize", "maxSize")]
        if any(size is None for size in sizes):
            continue
        low, expected, high = (int(size or 0) for size in sizes)
        types = _get(resource.props, "instanceTypes") or []
        row = ctx.table.price(resource.region, "ec2", str(types[0])) if types else None
        vcpu = row.vcpu if row and row.vcpu else None
        if vcpu:
            capacity_at_max += vcpu * high
        detail = f"{types[0] if types else '?'}" + (f", {vcpu} vCPU each" if vcpu else "")
        bounds.append(Bound("node group", resource.name, low, expected, high, detail))
    for resource in resources:
        if resource.type != HELM_RELEASE:
            continue
        chart = str(_get(resource.props, "chart") or "").rstrip("/").rsplit("/", 1)[-1]
        if chart != ctx.service_chart:
            continue
        values = _get(resource.props, "values") or {}
        replicas = int(_number(_get(values, "replicaCount"), 1) or 1)
        if _get(values, "autoscaling.enabled") is True:
            low = int(_number(_get(values, "autoscaling.minReplicas"), replicas) or replicas)
            high = int(_number(_get(values, "autoscaling.maxReplicas"), replicas) or replicas)
        else:
            low = high = replicas
        cpu = _cpu(_get(values, "resources.requests.cpu"))
        detail = "pods run on the node groups (no charge of their own)"
        if cpu is not None:
            needed = cpu * high
            detail = f"{cpu:g} vCPU requested per pod: {needed:g} vCPU at the maximum"
            if capacity_at_max:
                fits = "fits in" if needed <= capacity_at_max else "EXCEEDS"
                detail += f", which {fits} the node groups' {capacity_at_max:g} vCPU at theirs"
        bounds.append(Bound("service pods (HPA)", resource.name, low, replicas, high, detail))
    return bounds


def estimate(
    resources: Iterable[Billable],
    table: PriceTable,
    *,
    as_of: datetime.date,
    service_chart: str = "langgraph-agent",
) -> Estimate:
    """Price every resource; components (no bill of their own) are skipped."""
    billable = [resource for resource in resources if not resource.is_component]
    by_identifier = {
        str(_get(r.props, "identifier")): r
        for r in billable
        if r.type == "aws:rds/instance:Instance" and _get(r.props, "identifier")
    }
    ctx = _Context(
        table=table,
        as_of=as_of,
        by_id={r.id: r for r in billable if r.id},
        by_identifier=by_identifier,
        service_chart=service_chart,
    )
    result = Estimate(as_of=as_of, assumptions=table.assumption_values())
    for resource in billable:
        rule = RULES.get(resource.type)
        if rule is None:
            if table.is_free(resource.type):
                result.free += 1
            else:
                result.unpriced.append(
                    Unpriced(resource.urn, resource.type, resource.name, "type not in the table")
                )
            continue
        ctx.missing.clear()
        try:
            lines = rule(resource, ctx)
        except _NotPriced as reason:
            result.unpriced.append(
                Unpriced(resource.urn, resource.type, resource.name, str(reason))
            )
            continue
        if not lines and not ctx.missing:
            result.free += 1
        result.lines.extend(lines)
        result.unpriced.extend(ctx.missing)
    result.bounds = _bounds(billable, ctx)
    return result


def money(amount: float) -> str:
    """`$1,234` (whole dollars; cents below ten dollars)."""
    if abs(amount) < 10:
        return f"${amount:,.2f}"
    return f"${math.floor(amount + 0.5):,}"


__all__ = ["Billable", "Bound", "Estimate", "Line", "Unpriced", "estimate", "money"]
