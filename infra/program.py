"""The whole stack: components wired together, then the release, then the stack outputs.

A stack deploys in two phases (docs/deploy.md). `cloud` declares the AWS resources only: the
registry then exists to push the image to, and with a private API endpoint this is all that
runs from outside the VPC. `all` (the default) adds the Kubernetes part (add-ons and the
service's release), which needs the API server reachable and the image in ECR.
"""

from __future__ import annotations

import os
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.addons import (
    aws_load_balancer_controller,
    cluster_autoscaler,
    envoy_gateway,
    gateway_api_crds,
    selected_addons,
)
from infra.backups import Backups, BackupsArgs
from infra.cache import Cache, CacheArgs
from infra.cluster import (
    AUTOSCALER_NAMESPACE,
    AUTOSCALER_SERVICE_ACCOUNT,
    Cluster,
    ClusterArgs,
)
from infra.config import NAMESPACE, StackConfig, StackConfigError, read_stack_config
from infra.database import Database, DatabaseArgs
from infra.database_logins import DatabaseLogins, DatabaseLoginsArgs
from infra.ecr import Registry, RegistryArgs
from infra.edge import Edge, EdgeArgs, gateway_objects, hosted_zone_id
from infra.iam import Account
from infra.identity import Identity, IdentityArgs, ReadableSecret
from infra.image import release_image
from infra.network import Network, NetworkArgs
from infra.release import Release, ReleaseArgs, SecretStoreSpec
from infra.release_values import (
    CANARY_PROVIDER,
    SECRET_STORE_NAME,
    ReleaseWiring,
    build_release_values,
)
from infra.tags import Tags

REPOSITORY = "langgraph-agent"
PHASE_VARIABLE = "AGENT_PLATFORM_PHASE"
PHASES = ("cloud", "all")
# Where losing a resource loses data: `protect` makes `pulumi destroy` stop at it.
PROTECTED_ENVIRONMENTS = frozenset({"staging", "prod"})


def deploy_phase(environ: dict[str, str] | None = None) -> str:
    phase = (os.environ if environ is None else environ).get(PHASE_VARIABLE, "all")
    if phase not in PHASES:
        raise StackConfigError(f"{PHASE_VARIABLE}={phase!r}: the phases are {', '.join(PHASES)}")
    return phase


def deployer_arn(caller_arn: str, provider: aws.Provider) -> str:
    """The IAM principal behind the caller: for an assumed role, the role (its ARN with
    path), not the STS session; terraform-aws-eks resolves it the same way
    (aws_iam_session_context, terraform-aws-eks#2327)."""
    context = aws.iam.get_session_context(
        arn=caller_arn, opts=pulumi.InvokeOptions(provider=provider)
    )
    return str(context.issuer_arn)


def check_admin_accounts(config: StackConfig, account_id: str) -> None:
    """Cluster admins live in the account being deployed to."""
    foreign = [arn for arn in config.cluster.admin_role_arns if arn.split(":")[4] != account_id]
    if foreign:
        raise StackConfigError(
            f"{config.stack_file}: {NAMESPACE}:cluster.adminRoleArns {foreign} are not in the "
            f"account being deployed to ({account_id})"
        )


def _pinned(config: StackConfig, digest: str) -> StackConfig:
    """The config with the release image's digest as ECR reported it."""
    image = config.release.image.model_copy(update={"digest": digest})
    release = config.release.model_copy(update={"image": image})
    return config.model_copy(update={"release": release})


def _aws_provider(name: str, region: str, tags: Tags) -> aws.Provider:
    return aws.Provider(
        name,
        region=region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=tags.base()),
    )


def _s3_cidrs(region: str, provider: aws.Provider) -> tuple[str, ...]:
    """S3's address ranges in the region, from the prefix list its gateway endpoint routes."""
    prefix_list = aws.ec2.get_managed_prefix_list(
        name=f"com.amazonaws.{region}.s3", opts=pulumi.InvokeOptions(provider=provider)
    )
    return tuple(sorted(entry.cidr for entry in prefix_list.entries if entry.cidr))


def _release_values(
    config: StackConfig,
    s3_cidrs: tuple[str, ...],
    network: Network,
    database: Database,
    logins: DatabaseLogins,
    cache: Cache,
    registry: Registry,
    backups: Backups,
    identity: Identity,
) -> pulumi.Output[dict[str, Any]]:
    """The chart's values, once every output they name has resolved."""
    resolved = pulumi.Output.all(
        repository_url=registry.repository_url,
        database_address=database.address,
        database_login_secret_arns=pulumi.Output.all(**logins.secret_arns),
        redis_address=cache.primary_address,
        redis_secret_arn=cache.app_user_secret_arn,
        service_secret_arn=identity.service_secret_arn,
        service_role_arn=identity.service_role_arn,
        backup_role_arn=identity.backup_role_arn,
        backup_bucket=backups.bucket_name,
        backup_key_arn=backups.key_arn,
    )
    return resolved.apply(
        lambda outputs: build_release_values(
            config,
            ReleaseWiring(
                **outputs,
                region=config.region,
                database_port=database.port,
                database_name=database.database_name,
                redis_port=cache.port,
                backup_prefix=backups.prefix,
                private_subnet_cidrs=network.private_subnet_cidrs,
                s3_cidrs=s3_cidrs,
                vpc_cidr=network.vpc_cidr,
            ),
        )
    )


def define_stack(config: StackConfig) -> dict[str, pulumi.Output[Any]]:
    """Declare every resource of the stack; return the stack outputs."""
    name = config.name
    tags = Tags(
        owner=config.tags.owner,
        environment=config.environment,
        cost_centre=config.tags.cost_centre,
    )
    provider = _aws_provider("aws", config.region, tags)
    invoke = pulumi.InvokeOptions(provider=provider)
    phase = deploy_phase()
    caller = aws.get_caller_identity(opts=invoke)
    partition = aws.get_partition(opts=invoke)
    account = Account(caller.account_id, partition.partition, config.region)
    check_admin_accounts(config, caller.account_id)
    on_aws = pulumi.ResourceOptions(providers=[provider])
    protect = config.environment in PROTECTED_ENVIRONMENTS

    network = Network(
        name,
        NetworkArgs(
            cidr=config.network.cidr,
            nat_per_az=config.network.nat_gateways == "perAz",
            flow_log_retention_days=config.network.flow_log_retention_days,
            account=account,
            tags=tags,
        ),
        on_aws,
    )
    cluster = Cluster(
        name,
        ClusterArgs(
            config=config.cluster,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            private_subnet_cidrs=network.private_subnet_cidrs,
            deployer_arn=deployer_arn(caller.arn, provider),
            account=account,
            tags=tags,
        ),
        on_aws,
    )
    # The DR region (backups.replicaRegion): dumps, automated backups, images and the service
    # secret are copied there (docs/runbooks/region-loss.md).
    replica_region = config.backups.replica_region
    replica_provider = (
        _aws_provider("aws-backup-replica", replica_region, tags) if replica_region else None
    )
    replica_account = (
        Account(account.account_id, account.partition, replica_region) if replica_region else None
    )
    recovery = config.recovery
    database = Database(
        name,
        DatabaseArgs(
            config=config.database,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            client_security_group_id=cluster.workload_security_group_id,
            vpc_cidr=network.vpc_cidr,
            account=account,
            tags=tags,
            protect=protect,
            replica_provider=replica_provider,
            replica_account=replica_account,
            restore_from_automated_backups_arn=(
                f"arn:{account.partition}:rds:{config.region}:{account.account_id}:"
                f"auto-backup:{recovery.automated_backups_id}"
                if recovery
                else None
            ),
        ),
        on_aws,
    )
    logins = DatabaseLogins(
        name,
        DatabaseLoginsArgs(
            address=database.address,
            port=database.port,
            database_name=database.database_name,
            master_secret_arn=database.master_secret_arn,
            key_arn=database.key_arn,
            region=config.region,
            private_subnet_ids=network.private_subnet_ids,
            rotation_security_group_id=database.rotation_security_group_id,
            tags=tags,
        ),
        on_aws,
    )
    cache = Cache(
        name,
        CacheArgs(
            config=config.cache,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            client_security_group_id=cluster.workload_security_group_id,
            account=account,
            tags=tags,
            protect=protect,
        ),
        on_aws,
    )
    registry = Registry(
        name,
        RegistryArgs(
            repository_name=recovery.repository_name if recovery else f"{name}/{REPOSITORY}",
            config=config.registry,
            account=account,
            tags=tags,
            protect=protect,
            replica_region=replica_region,
            replicated=recovery is not None,
        ),
        on_aws,
    )
    backups = Backups(
        name,
        BackupsArgs(
            config=config.backups,
            account=account,
            tags=tags,
            replica_provider=replica_provider,
            protect=protect,
        ),
        on_aws,
    )
    identity = Identity(
        name,
        IdentityArgs(
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            namespace=config.release.namespace,
            service_account=config.release.service_account,
            backup_service_account=config.release.backup_service_account,
            # What External Secrets syncs through the service's identity: the workloads' own
            # logins and the Redis user. Never the RDS master secret (break-glass only).
            service_secrets=[
                *(ReadableSecret(arn, database.key_arn) for arn in logins.secret_arns.values()),
                ReadableSecret(cache.app_user_secret_arn, cache.key_arn),
            ],
            backup_bucket_arn=backups.bucket_arn,
            backup_key_arn=backups.key_arn,
            backup_prefix=backups.prefix,
            account=account,
            tags=tags,
            replica_provider=replica_provider,
            replica_account=replica_account,
            existing_secret=ReadableSecret(
                f"arn:{account.partition}:secretsmanager:{config.region}:{account.account_id}:"
                f"secret:{recovery.service_secret_name}",
                f"arn:{account.partition}:kms:{config.region}:{account.account_id}:"
                f"key/{recovery.service_secret_key_id}",
            )
            if recovery
            else None,
        ),
        on_aws,
    )

    edge = None
    if config.edge is not None:
        edge = Edge(
            name,
            EdgeArgs(
                config=config.edge,
                zone_id=hosted_zone_id(config.edge, config.stack_file, provider),
                vpc_id=network.vpc_id,
                oidc_provider_arn=cluster.oidc_provider_arn,
                oidc_issuer=cluster.oidc_issuer,
                account=account,
                tags=tags,
            ),
            on_aws,
        )

    outputs: dict[str, pulumi.Output[Any]] = {
        "clusterName": cluster.cluster_name,
        "kubeconfig": cluster.kubeconfig,
        "vpcId": network.vpc_id,
        "databaseEndpoint": database.address.apply(lambda host: f"{host}:{database.port}"),
        # Break-glass only: no pod mounts it (policy: no-pod-mounts-the-rds-master-secret).
        "databaseMasterSecretArn": database.master_secret_arn,
        "databaseLoginSecretArns": pulumi.Output.all(**logins.secret_arns),
        "redisEndpoint": cache.primary_address.apply(lambda host: f"{host}:{cache.port}"),
        "redisAppUserSecretArn": cache.app_user_secret_arn,
        "repositoryUrl": registry.repository_url,
        "backupBucket": backups.bucket_name,
        "backupPrefix": pulumi.Output.from_input(backups.prefix),
        "serviceRoleArn": identity.service_role_arn,
        "backupRoleArn": identity.backup_role_arn,
        "serviceSecretArn": identity.service_secret_arn,
        "deployPhase": pulumi.Output.from_input(phase),
        "replicaBucket": pulumi.Output.from_input(backups.replica_bucket_name),
        "drRestoreRoleArn": pulumi.Output.from_input(backups.restore_role_arn),
        "restoredDatabase": pulumi.Output.from_input(database.restored_identifier),
        "databaseIdentifier": database.identifier,
    }
    if edge is not None:
        outputs["edgeCertificateArn"] = edge.certificate_arn
    if phase == "cloud":
        return outputs

    image = release_image(
        registry_id=caller.account_id,
        region=config.region,
        repository_name=f"{name}/{REPOSITORY}",
        image=config.release.image,
        stack_file=config.stack_file,
        opts=invoke,
    )
    config = _pinned(config, image.digest)
    values = _release_values(
        config,
        _s3_cidrs(config.region, provider),
        network,
        database,
        logins,
        cache,
        registry,
        backups,
        identity,
    )
    autoscaler = cluster_autoscaler(
        name,
        config.region,
        cluster.autoscaler_role_arn,
        config.cluster.version,
        namespace=AUTOSCALER_NAMESPACE,
        service_account=AUTOSCALER_SERVICE_ACCOUNT,
    )
    edge_addons = (
        [
            aws_load_balancer_controller(
                name, config.region, network.vpc_id, edge.load_balancer_controller_role_arn
            ),
            gateway_api_crds(),
            envoy_gateway(),
        ]
        if edge is not None
        else []
    )
    release = Release(
        name,
        ReleaseArgs(
            kubeconfig=cluster.kubeconfig,
            namespace=config.release.namespace,
            release_name=config.release.release_name,
            values=values,
            addons=selected_addons(
                config.platform_addons, CANARY_PROVIDER, autoscaler, edge_addons
            ),
            cluster_ready=[
                *cluster.admin_entries,
                *cluster.node_groups,
                *cluster.addons,
                cluster.autoscaler_policy,
            ],
            release_ready=[
                *identity.release_prerequisites,
                *cache.secret_versions,
                *logins.secret_versions,
            ],
            secret_store=SecretStoreSpec(
                name=SECRET_STORE_NAME,
                region=config.region,
                service_account=config.release.service_account,
            ),
            gateway_objects=(
                gateway_objects(config.edge, edge.certificate_arn)
                if config.edge is not None and edge is not None
                else ()
            ),
            edge_ready=edge.ready if edge is not None else (),
        ),
    )
    outputs["releaseImage"] = pulumi.Output.from_input(f"{image.repository_url}@{image.digest}")
    outputs["releaseStatus"] = release.release_status
    return outputs


def main() -> dict[str, pulumi.Output[Any]]:
    """The program `pulumi up` runs: read the stack config once, declare, export."""
    outputs = define_stack(read_stack_config())
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs
