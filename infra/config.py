"""The stack configuration, read once into a typed, validated object.

`Pulumi.<stack>.yaml` holds only what differs between environments; everything that is the
same everywhere is a default here. Any missing, unknown or wrongly typed key stops the program
with a message that names the key and the stack file, before a single resource is declared.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pulumi
from agent_service.settings import TuningSettings
from pulumi.runtime import config as runtime_config
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

NAMESPACE = "agent-platform"
REGION_KEY = "aws:region"

# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557}
)
REGION_PATTERN = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"
IAM_ROLE_ARN_PATTERN = r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$"
# Account IDs that AWS's documentation uses in examples: an ARN in one of them was copied from
# a page, never pointed at a real account (e.g. the IAM User Guide's 111122223333/444455556666,
# the 123456789012 of the EKS and STS references).
DOCUMENTATION_ACCOUNTS = frozenset(
    {
        "111122223333",
        "444455556666",
        "777788889999",
        "123456789012",
        "111111111111",
        "222222222222",
        "333333333333",
        "555555555555",
        "999999999999",
    }
)


class StackConfigError(pulumi.RunError):
    """A stack file is wrong; the message names the key and the file, nothing else to read."""


def _cidr(value: str) -> str:
    network = ipaddress.ip_network(value, strict=True)
    if network.version != 4:
        raise ValueError("must be an IPv4 CIDR")
    return str(network)


def _public_cidr(value: str) -> str:
    cidr = _cidr(value)
    if ipaddress.ip_network(cidr).prefixlen == 0:
        raise ValueError("0.0.0.0/0 would open the API server to the internet")
    return cidr


def _real_account(value: str) -> str:
    account = value.split(":")[4]
    if account in DOCUMENTATION_ACCOUNTS:
        raise ValueError(
            f"account {account} is an AWS documentation example, not an account of yours"
        )
    return value


def _log_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"must be one of CloudWatch's periods {sorted(LOG_RETENTION_DAYS)}")
    return value


Cidr = Annotated[str, AfterValidator(_cidr)]
PublicCidr = Annotated[str, AfterValidator(_public_cidr)]
LogRetentionDays = Annotated[int, AfterValidator(_log_retention)]
Region = Annotated[str, Field(pattern=REGION_PATTERN)]
RoleArn = Annotated[str, Field(pattern=IAM_ROLE_ARN_PATTERN), AfterValidator(_real_account)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,39}$")]


class Section(BaseModel):
    """A block of a stack file: camelCase keys there, snake_case attributes here."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        # Lax: Pulumi hands top-level scalars over as strings ("3", "true").
        strict=False,
    )


class TagsConfig(Section):
    owner: Annotated[str, Field(min_length=1, max_length=128)]
    cost_centre: Annotated[str, Field(min_length=1, max_length=128)]


class NetworkConfig(Section):
    cidr: Cidr
    # "perAz" survives the loss of an availability zone; "single" costs one gateway.
    nat_gateways: Literal["single", "perAz"]
    flow_log_retention_days: LogRetentionDays = 30

    @field_validator("cidr")
    @classmethod
    def _room_for_subnets(cls, value: str) -> str:
        prefix = ipaddress.ip_network(value).prefixlen
        if not 16 <= prefix <= 20:
            raise ValueError("must be a /16 to /20 so that three private and public subnets fit")
        return value


class NodeGroupConfig(Section):
    name: Name
    instance_types: Annotated[list[str], Field(min_length=1)]
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    # Must match the instance types' architecture (the *_ARM_64_* types for Graviton).
    ami_type: Literal["AL2023_x86_64_STANDARD", "AL2023_ARM_64_STANDARD"] = "AL2023_x86_64_STANDARD"
    min_size: Annotated[int, Field(ge=1, le=100)]
    desired_size: Annotated[int, Field(ge=1, le=100)]
    max_size: Annotated[int, Field(ge=1, le=100)]
    disk_size_gb: Annotated[int, Field(ge=20, le=1000)] = 50

    @model_validator(mode="after")
    def _sizes_in_order(self) -> NodeGroupConfig:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError("needs minSize <= desiredSize <= maxSize")
        return self


class EndpointAccessConfig(Section):
    """How the machine running `pulumi up` reaches the API server, which the same run uses to
    install the add-ons and the release (pulumi/pulumi-eks#1134 is that run failing against a
    private-only endpoint).

    - `publicCidrs`: the endpoint is private and public, the public side open only to
      `publicCidrs` (the deployer's egress addresses, e.g. a VPN or CI runner's fixed IP).
    - `inVpc`: the endpoint is private only; the Kubernetes phase runs from a runner inside
      the VPC (a self-hosted CI runner or an SSM-managed instance in `runnerCidrs`), which the
      cluster security group admits on 443.
    """

    mode: Literal["publicCidrs", "inVpc"]
    public_cidrs: list[PublicCidr] = Field(default_factory=list)
    # Empty in `inVpc` mode: the VPC's private subnets (where such a runner is started).
    runner_cidrs: list[Cidr] = Field(default_factory=list)

    @model_validator(mode="after")
    def _mode_has_its_addresses(self) -> EndpointAccessConfig:
        if self.mode == "publicCidrs" and not self.public_cidrs:
            raise ValueError(
                "mode publicCidrs needs publicCidrs: the deployer's egress CIDRs "
                "(pulumi config set --path 'cluster.endpointAccess.publicCidrs[0]' <cidr>)"
            )
        if self.mode == "inVpc" and self.public_cidrs:
            raise ValueError("mode inVpc keeps the endpoint private: remove publicCidrs")
        if self.mode == "publicCidrs" and self.runner_cidrs:
            raise ValueError("runnerCidrs belongs to mode inVpc")
        return self


class ClusterConfig(Section):
    # A version in EKS standard support (policies/eks_versions.py holds the dated table).
    version: Annotated[str, Field(pattern=r"^1\.\d{2}$")]
    endpoint_access: EndpointAccessConfig
    # Cluster admins besides the deploying principal, which always gets an access entry.
    admin_role_arns: list[RoleArn] = Field(default_factory=list)
    node_groups: Annotated[list[NodeGroupConfig], Field(min_length=1)]
    log_retention_days: LogRetentionDays = 90
    deletion_protection: bool = False
    # EKS add-on versions (`aws eks describe-addon-versions`); unset: the version EKS names
    # the default for the cluster's Kubernetes version, resolved when the stack is deployed.
    addon_versions: dict[
        Literal["vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver"],
        Annotated[str, Field(pattern=r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")],
    ] = Field(default_factory=dict)

    @field_validator("node_groups")
    @classmethod
    def _unique_names(cls, groups: list[NodeGroupConfig]) -> list[NodeGroupConfig]:
        names = [group.name for group in groups]
        if len(set(names)) != len(names):
            raise ValueError(f"node group names must be unique, got {names}")
        return groups


class PointInTimeRestoreConfig(Section):
    """A second instance restored to `restoreTime` next to the primary (docs/runbooks/pitr.md).
    RDS restores "to any point in time before the ... LatestRestorableTime" within the backup
    retention (RestoreDBInstanceToPointInTime, docs.aws.amazon.com/AmazonRDS/latest/APIReference/
    API_RestoreDBInstanceToPointInTime.html)."""

    # UTC, to the second, as RDS takes it.
    restore_time: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")]
    # true: the release uses the restored instance (its endpoint and its master secret).
    serve: bool = False


class RecoveryConfig(Section):
    """A DR stack: the platform rebuilt in this region from another region's copies
    (docs/runbooks/region-loss.md). Every value is printed by that runbook's commands; the
    ARNs are built from them with the deploying account and this stack's region."""

    # The replicated automated backups of the lost region's instance, in this region
    # (`ab-...`, the end of their DBInstanceAutomatedBackupsArn); the database is restored
    # from them to their latest restorable time.
    automated_backups_id: Annotated[str, Field(pattern=r"^ab-[a-z0-9]+$")]
    # The replica of the service secret (API keys) in this region: its name with Secrets
    # Manager's six-character suffix, and the ID of the key encrypting it.
    service_secret_name: Annotated[str, Field(pattern=r"^[\w/+=.@-]+-[A-Za-z0-9]{6}$")]
    service_secret_key_id: Annotated[str, Field(pattern=r"^(mrk-)?[a-f0-9-]{32,36}$")]
    # The repository ECR replication filled in this region (same name as in the lost region).
    repository_name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._/-]*$")]


class DatabaseConfig(Section):
    instance_class: Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")]
    # A major version ("16") or a minor one ("16.4"); AWS applies minor upgrades itself.
    engine_version: Annotated[str, Field(pattern=r"^16(\.\d+)?$")] = "16"
    allocated_storage_gb: Annotated[int, Field(ge=20, le=65536)] = 20
    max_allocated_storage_gb: Annotated[int, Field(ge=20, le=65536)] = 100
    multi_az: bool
    deletion_protection: bool
    backup_retention_days: Annotated[int, Field(ge=1, le=35)]
    performance_insights_retention_days: Literal[7, 31, 93, 186, 372, 731] = 7
    log_retention_days: LogRetentionDays = 30
    # Copy automated backups (snapshots and transaction logs: point-in-time restore there) to
    # backups.replicaRegion (InstanceAutomatedBackupsReplication).
    replicate_backups: bool = False
    point_in_time_restore: PointInTimeRestoreConfig | None = None
    # The CA bundle in the image that `sslmode=verify-full` checks the server against.
    ssl_root_cert: Annotated[str, Field(pattern=r"^/")] = "/etc/ssl/certs/rds-global-bundle.pem"

    @model_validator(mode="after")
    def _storage_can_grow(self) -> DatabaseConfig:
        if self.max_allocated_storage_gb < self.allocated_storage_gb:
            raise ValueError("maxAllocatedStorageGb must be at least allocatedStorageGb")
        return self


class CacheConfig(Section):
    node_type: Annotated[str, Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")]
    engine_version: Annotated[str, Field(pattern=r"^7\.\d+$")] = "7.1"
    # One primary plus replicas; two or more turn on automatic failover.
    num_cache_clusters: Annotated[int, Field(ge=1, le=6)]
    multi_az: bool
    snapshot_retention_days: Annotated[int, Field(ge=0, le=35)] = 1

    @model_validator(mode="after")
    def _multi_az_needs_a_replica(self) -> CacheConfig:
        if self.multi_az and self.num_cache_clusters < 2:
            raise ValueError("multiAz needs numCacheClusters >= 2 (a replica to fail over to)")
        return self

    @property
    def automatic_failover(self) -> bool:
        return self.num_cache_clusters >= 2


class RegistryConfig(Section):
    keep_images: Annotated[int, Field(ge=1, le=1000)] = 30
    untagged_expiry_days: Annotated[int, Field(ge=1, le=365)] = 7


class BackupsConfig(Section):
    prefix: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._/-]*/$")] = "postgres/"
    # The design guide keeps 30 days of dumps.
    expire_after_days: Annotated[int, Field(ge=1, le=3650)] = 30
    noncurrent_expire_after_days: Annotated[int, Field(ge=1, le=3650)] = 7
    # A second region receiving a copy of every dump; unset: no replication.
    replica_region: Region | None = None
    # Object Lock (COMPLIANCE) default retention of each copy in the replica bucket; at least
    # expireAfterDays, so a copy outlives its original. Unset: expireAfterDays.
    replica_lock_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    # The one role (its name in the deploying account) that may delete backup versions or
    # change the buckets' lifecycle, replication, lock, versioning or policy (assumed with
    # MFA, see docs/runbooks/backup-deletion.md). Required with a replica region.
    break_glass_role_name: Annotated[str, Field(pattern=r"^[\w+=,.@-]{1,64}$")] | None = None
    # Who may assume the break-glass role, always with MFA; empty: the account itself, i.e.
    # the account's IAM principals whose own policies allow them sts:AssumeRole on it (its
    # admins). The stack with replicaRegion creates the role; other stacks only name it.
    break_glass_principals: list[RoleArn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _replica_is_protected(self) -> BackupsConfig:
        if self.replica_lock_days is not None and self.replica_lock_days < self.expire_after_days:
            raise ValueError("replicaLockDays must be at least expireAfterDays")
        if self.replica_region is not None and self.break_glass_role_name is None:
            raise ValueError("replicaRegion needs breakGlassRoleName (who may delete backups)")
        return self

    @property
    def lock_days(self) -> int:
        return self.replica_lock_days or self.expire_after_days


class ImageConfig(Section):
    """The release's image: the tag names the version, the digest pins the bytes. Unset, the
    digest is the one ECR holds for the tag (tags are immutable there), looked up when the
    stack is deployed; set, ECR must hold that digest under that tag."""

    tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")] | None = None

    @field_validator("tag")
    @classmethod
    def _not_latest(cls, value: str) -> str:
        if value == "latest":
            raise ValueError("'latest' is mutable; the repository only accepts immutable tags")
        return value


class AutoscalingConfig(Section):
    enabled: bool
    min_replicas: Annotated[int, Field(ge=1, le=100)] = 2
    max_replicas: Annotated[int, Field(ge=1, le=100)] = 4
    target_cpu_utilization_percentage: Annotated[int, Field(ge=10, le=100)] = 70

    @model_validator(mode="after")
    def _bounds_in_order(self) -> AutoscalingConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self


class DisruptionBudgetConfig(Section):
    enabled: bool
    min_available: Annotated[int, Field(ge=1)] = 1


class ServiceSettings(Section, TuningSettings):
    """The service's settings a stack tunes: `agent_service.settings.TuningSettings` itself, so
    the names (camelCase here), types, bounds, defaults and checks are the service's own. The
    other settings are secrets or wiring (URLs, bucket, region) that the program fills in."""

    @property
    def calls_a_model_provider(self) -> bool:
        return self.model != "offline"


Quantity = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti)?$")]


class ResourceAmounts(Section):
    cpu: Quantity
    memory: Quantity


class ResourcesConfig(Section):
    """The service container's requests and limits (the chart's defaults when unset)."""

    requests: ResourceAmounts
    limits: ResourceAmounts


HOSTNAME_PATTERN = r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$"
Hostname = Annotated[str, Field(pattern=HOSTNAME_PATTERN, max_length=253)]


class EdgeConfig(Section):
    """The way in from the internet (infra/edge.py): an NLB in front of the Envoy Gateway
    proxies, TLS with an ACM certificate for `host`, validated through DNS in `hostedZone`."""

    host: Hostname
    # The public Route 53 zone that holds `host` (the zone's name, e.g. example.org); ACM's
    # validation record is written there.
    hosted_zone: Hostname
    # Who may connect to the NLB: the clients' CIDRs, or 0.0.0.0/0 for a public API. Stated per
    # stack on purpose: there is no default.
    source_ranges: Annotated[list[Cidr], Field(min_length=1)]
    proxy_replicas: Annotated[int, Field(ge=1, le=20)] = 2

    @model_validator(mode="after")
    def _host_in_zone(self) -> EdgeConfig:
        if self.host != self.hosted_zone and not self.host.endswith(f".{self.hosted_zone}"):
            raise ValueError(
                f"{NAMESPACE}:edge.host {self.host!r} is not in {NAMESPACE}:edge.hostedZone "
                f"{self.hosted_zone!r}: ACM validates the certificate through that zone"
            )
        return self


class ReleaseConfig(Section):
    namespace: Name = "agent"
    release_name: Name = "langgraph-agent"
    service_account: Name = "langgraph-agent"
    backup_service_account: Name = "langgraph-agent-backup"
    image: ImageConfig
    replicas: Annotated[int, Field(ge=1, le=100)]
    autoscaling: AutoscalingConfig
    pod_disruption_budget: DisruptionBudgetConfig
    canary: bool
    monitoring: bool
    backup_schedule: Annotated[str, Field(pattern=r"^(\S+\s+){4}\S+$")] = "17 3 * * *"
    resources: ResourcesConfig | None = None
    settings: ServiceSettings = Field(default_factory=ServiceSettings)

    @model_validator(mode="after")
    def _canary_needs_its_parts(self) -> ReleaseConfig:
        if self.canary and not self.autoscaling.enabled:
            raise ValueError("canary needs autoscaling.enabled (Flagger scales through the HPA)")
        if self.monitoring and self.settings.metrics_require_auth:
            raise ValueError(
                "monitoring cannot scrape /metrics when settings.metricsRequireAuth is true"
            )
        return self


class PlatformAddonsConfig(Section):
    """Optional cluster add-ons. External Secrets is not optional: the release's credentials
    reach the pods through it."""

    flagger: bool = False
    metrics_server: bool = False
    prometheus: bool = False


class CostConfig(Section):
    """What the stack may cost a month (the `make plan` estimate, policies/prices.yaml) and
    whether exceeding it blocks the plan (`stack-monthly-budget` mandatory) or only warns."""

    monthly_budget_usd: Annotated[float, Field(gt=0, le=1_000_000)]
    enforce: bool = False


class StackConfig(Section):
    """Everything the program reads from the stack, validated."""

    stack: str
    stack_file: str
    region: Region
    environment: Literal["dev", "staging", "prod"]
    tags: TagsConfig
    network: NetworkConfig
    cluster: ClusterConfig
    database: DatabaseConfig
    cache: CacheConfig
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    backups: BackupsConfig = Field(default_factory=BackupsConfig)
    release: ReleaseConfig
    # Unset: no way in from outside the cluster (no load balancer, no Gateway).
    edge: EdgeConfig | None = None
    platform_addons: PlatformAddonsConfig = Field(default_factory=PlatformAddonsConfig)
    recovery: RecoveryConfig | None = None
    cost: CostConfig | None = None

    @model_validator(mode="after")
    def _dr_parts_fit(self) -> StackConfig:
        if self.database.replicate_backups and self.backups.replica_region is None:
            raise ValueError(
                f"{NAMESPACE}:database.replicateBackups needs {NAMESPACE}:backups.replicaRegion "
                "(the region the copies go to)"
            )
        if self.backups.replica_region == self.region:
            raise ValueError(f"{NAMESPACE}:backups.replicaRegion must differ from aws:region")
        return self

    @model_validator(mode="after")
    def _release_has_its_addons(self) -> StackConfig:
        release, addons = self.release, self.platform_addons
        needs = [
            (release.autoscaling.enabled, "metricsServer", addons.metrics_server, "autoscaling"),
            (release.canary, "flagger", addons.flagger, "canary"),
            (release.monitoring, "prometheus", addons.prometheus, "monitoring"),
        ]
        missing = [
            f"{NAMESPACE}:release.{feature} needs {NAMESPACE}:platformAddons.{addon}: true"
            for wanted, addon, installed, feature in needs
            if wanted and not installed
        ]
        if release.canary and self.edge is None:
            missing.append(
                f"{NAMESPACE}:release.canary needs {NAMESPACE}:edge (Flagger shifts the "
                "traffic through the Gateway's HTTPRoute)"
            )
        if missing:
            raise ValueError("; ".join(missing))
        return self

    @model_validator(mode="after")
    def _runner_inside_the_vpc(self) -> StackConfig:
        vpc = ipaddress.ip_network(self.network.cidr)
        outside = [
            cidr
            for cidr in self.cluster.endpoint_access.runner_cidrs
            if not ipaddress.ip_network(cidr).subnet_of(vpc)  # type: ignore[arg-type]
        ]
        if outside:
            raise ValueError(
                f"{NAMESPACE}:cluster.endpointAccess.runnerCidrs {outside} lie outside "
                f"{NAMESPACE}:network.cidr {self.network.cidr}: an in-VPC runner runs in the VPC"
            )
        return self

    @property
    def name(self) -> str:
        """The prefix of every physical name in this stack."""
        return f"agent-{self.environment}"


# The stack-file key each model field is read from (the project namespace, except the region).
_FIELD_KEYS = {
    "region": REGION_KEY,
    **{
        field.alias or name: f"{NAMESPACE}:{field.alias or name}"
        for name, field in StackConfig.model_fields.items()
        if name not in ("stack", "stack_file", "region")
    },
}
_KEY_FIELDS = {key: field for field, key in _FIELD_KEYS.items()}


def stack_file_name(stack: str) -> str:
    return f"Pulumi.{stack}.yaml"


def _decode(value: Any) -> Any:
    """Pulumi hands the program every value as a string; structured values as JSON."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _key_path(loc: tuple[int | str, ...]) -> str:
    head, *rest = loc
    key = _FIELD_KEYS.get(str(head), str(head))
    path = key
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _problem(error: Mapping[str, Any]) -> str:
    """One line naming the key: `<namespace>:<block>.<key> ...`."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message  # a rule across blocks; the message names the keys
    key = _key_path(error["loc"])
    if error["type"] == "missing":
        return f"{key} is missing"
    if error["type"] == "extra_forbidden":
        return f"{key} is not a known key"
    given = error["input"]
    # A whole block as input is noise; a value shows what was written.
    shown = "" if isinstance(given, dict) else f" (got {given!r})"
    return f"{key} is invalid: {message}{shown}"


def parse_stack_config(stack: str, raw: Mapping[str, Any]) -> StackConfig:
    """Validate the raw stack configuration (`<namespace>:<key>` -> value) of `stack`."""
    stack_file = stack_file_name(stack)
    problems: list[str] = []
    values: dict[str, Any] = {"stack": stack, "stackFile": stack_file}
    for key, value in raw.items():
        field = _KEY_FIELDS.get(key)
        if field is not None:
            values[field] = _decode(value)
        elif key.startswith(f"{NAMESPACE}:"):
            known = ", ".join(sorted(k for k in _KEY_FIELDS if k.startswith(NAMESPACE)))
            problems.append(f"{key} is not a known key (known: {known})")
    try:
        config = StackConfig.model_validate(values)
    except ValidationError as error:
        problems += [_problem(detail) for detail in error.errors()]
    if len(problems) == 1:
        raise StackConfigError(f"{stack_file}: {problems[0]}")
    if problems:
        listed = "".join(f"\n  - {problem}" for problem in problems)
        raise StackConfigError(f"{stack_file}: {len(problems)} problems:{listed}")
    return config


def read_stack_config() -> StackConfig:
    """Read the running stack's configuration, as the Pulumi CLI passes it, exactly once."""
    raw: dict[str, Any] = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    return parse_stack_config(pulumi.get_stack(), raw)


__all__ = [
    "NAMESPACE",
    "REGION_KEY",
    "CostConfig",
    "StackConfig",
    "StackConfigError",
    "parse_stack_config",
    "read_stack_config",
    "stack_file_name",
]
