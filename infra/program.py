"""The whole stack: components wired together, then the release, then the stack outputs."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from infra.addons import selected_addons
from infra.backups import Backups, BackupsArgs
from infra.cache import Cache, CacheArgs
from infra.cluster import Cluster, ClusterArgs
from infra.config import StackConfig, read_stack_config
from infra.database import Database, DatabaseArgs
from infra.ecr import Registry, RegistryArgs
from infra.iam import Account
from infra.identity import Identity, IdentityArgs, ReadableSecret
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
    cache: Cache,
    registry: Registry,
    backups: Backups,
    identity: Identity,
) -> pulumi.Output[dict[str, Any]]:
    """The chart's values, once every output they name has resolved."""
    resolved = pulumi.Output.all(
        repository_url=registry.repository_url,
        database_address=database.address,
        database_secret_arn=database.master_secret_arn,
        redis_address=cache.primary_address,
        redis_secret_arn=cache.auth_secret_arn,
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
                database_user=database.username,
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
    caller = aws.get_caller_identity(opts=invoke)
    partition = aws.get_partition(opts=invoke)
    account = Account(caller.account_id, partition.partition, config.region)
    on_aws = pulumi.ResourceOptions(providers=[provider])

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
            account=account,
            tags=tags,
        ),
        on_aws,
    )
    database = Database(
        name,
        DatabaseArgs(
            config=config.database,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            client_security_group_id=cluster.cluster_security_group_id,
            account=account,
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
            client_security_group_id=cluster.cluster_security_group_id,
            account=account,
            tags=tags,
        ),
        on_aws,
    )
    registry = Registry(
        name,
        RegistryArgs(
            repository_name=f"{name}/{REPOSITORY}",
            config=config.registry,
            account=account,
            tags=tags,
        ),
        on_aws,
    )
    replica_region = config.backups.replica_region
    replica_provider = (
        _aws_provider("aws-backup-replica", replica_region, tags) if replica_region else None
    )
    backups = Backups(
        name,
        BackupsArgs(
            config=config.backups,
            account=account,
            tags=tags,
            replica_provider=replica_provider,
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
            service_secrets=[
                ReadableSecret(database.master_secret_arn, database.key_arn),
                ReadableSecret(cache.auth_secret_arn, cache.key_arn),
            ],
            backup_bucket_arn=backups.bucket_arn,
            backup_key_arn=backups.key_arn,
            backup_prefix=backups.prefix,
            account=account,
            tags=tags,
        ),
        on_aws,
    )

    values = _release_values(
        config,
        _s3_cidrs(config.region, provider),
        network,
        database,
        cache,
        registry,
        backups,
        identity,
    )
    Release(
        name,
        ReleaseArgs(
            kubeconfig=cluster.kubeconfig,
            namespace=config.release.namespace,
            release_name=config.release.release_name,
            values=values,
            addons=selected_addons(config.platform_addons, CANARY_PROVIDER),
            cluster_ready=[*cluster.admin_entries, *cluster.node_groups, *cluster.addons],
            secret_store=SecretStoreSpec(
                name=SECRET_STORE_NAME,
                region=config.region,
                service_account=config.release.service_account,
            ),
        ),
    )

    return {
        "clusterName": cluster.cluster_name,
        "kubeconfig": cluster.kubeconfig,
        "vpcId": network.vpc_id,
        "databaseEndpoint": database.address.apply(lambda host: f"{host}:{database.port}"),
        "databaseSecretArn": database.master_secret_arn,
        "redisEndpoint": cache.primary_address.apply(lambda host: f"{host}:{cache.port}"),
        "redisAuthSecretArn": cache.auth_secret_arn,
        "repositoryUrl": registry.repository_url,
        "backupBucket": backups.bucket_name,
        "backupPrefix": pulumi.Output.from_input(backups.prefix),
        "serviceRoleArn": identity.service_role_arn,
        "backupRoleArn": identity.backup_role_arn,
        "serviceSecretArn": identity.service_secret_arn,
    }


def main() -> dict[str, pulumi.Output[Any]]:
    """The program `pulumi up` runs: read the stack config once, declare, export."""
    outputs = define_stack(read_stack_config())
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs
