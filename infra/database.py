"""RDS PostgreSQL 16: private, encrypted, TLS-only, its password owned by AWS.

The master password is generated and rotated by RDS in Secrets Manager
(`manage_master_user_password`), so it never appears in the program, its state or the chart's
values. The master user is break-glass only: the workloads log in as their own roles
(infra.database_logins), and only their rotation function reads the master secret.
RDS creates no read replica of such a source (the limitations in
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-secrets-manager.html;
terraform-aws-rds's replica example turns the managed password off for it), so there is none:
Multi-AZ covers the loss of an instance or a zone, and the pack refuses such a replica.
AWS applies minor engine upgrades in the maintenance window; the program ignores the
resulting version drift instead of trying to downgrade.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.config import DatabaseConfig
from infra.iam import Account
from infra.kms import encryption_key, logs_grant
from infra.tags import Tags

PORT = 5432
DATABASE_NAME = "agent"
MASTER_USERNAME = "agent"
PARAMETER_FAMILY = "postgres16"
# The CA whose certificates `sslmode=verify-full` checks (RSA 2048, valid until 2061).
CA_CERT_IDENTIFIER = "rds-ca-rsa2048-g1"
# Exported to CloudWatch; created here first so that they get retention and encryption.
EXPORTED_LOGS = ("postgresql", "upgrade")
TLS_PARAMETERS = {
    "rds.force_ssl": "1",
    "ssl_min_protocol_version": "TLSv1.2",
}


@dataclass(frozen=True)
class DatabaseArgs:
    config: DatabaseConfig
    vpc_id: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    # The nodes' workload security group: the only source allowed to connect (besides the
    # credential rotation function, created here).
    client_security_group_id: pulumi.Input[str]
    vpc_cidr: pulumi.Input[str]
    account: Account
    tags: Tags
    # prod/staging: `pulumi destroy` (or a replacing change) stops at the data.
    protect: bool = False
    # The DR region (backups.replicaRegion): where automated backups are replicated to.
    replica_provider: pulumi.ProviderResource | None = None
    replica_account: Account | None = None
    # A DR stack: the primary is restored from these replicated automated backups.
    restore_from_automated_backups_arn: str | None = None


class Database(pulumi.ComponentResource):
    address: pulumi.Output[str]
    port: int
    database_name: str
    username: str
    master_secret_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    rotation_security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-platform:database:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config, tags = args.config, args.tags

        key = encryption_key(
            f"{name}-db",
            description=f"Storage, Performance Insights and the master secret of {name}",
            account=args.account,
            tags=tags.named(f"{name}-db"),
            parent=self,
            protect=args.protect,
        )
        identifier = f"{name}-db"
        log_group_names = [f"/aws/rds/instance/{identifier}/{log}" for log in EXPORTED_LOGS]
        logs_key = encryption_key(
            f"{name}-db-logs",
            description=f"Exported PostgreSQL logs of {name}",
            account=args.account,
            tags=tags.named(f"{name}-db-logs"),
            parent=self,
            grants=[logs_grant(args.account, log_group_names)],
        )
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-db-{log}",
                name=group_name,
                retention_in_days=config.log_retention_days,
                kms_key_id=logs_key.arn,
                tags=tags.named(f"{name}-db-{log}"),
                opts=child,
            )
            for log, group_name in zip(EXPORTED_LOGS, log_group_names, strict=True)
        ]
        subnets = aws.rds.SubnetGroup(
            f"{name}-db",
            description=f"Private subnets of {name}",
            subnet_ids=list(args.private_subnet_ids),
            tags=tags.named(f"{name}-db"),
            opts=child,
        )
        # The Secrets Manager rotation function of the workloads' logins (infra.database_logins)
        # runs in the VPC: it reaches PostgreSQL and the Secrets Manager endpoint, nothing else.
        rotation = aws.ec2.SecurityGroup(
            f"{name}-db-rotation",
            description="Secrets Manager rotation function of the database logins",
            vpc_id=args.vpc_id,
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    description=description,
                    protocol="tcp",
                    from_port=port,
                    to_port=port,
                    cidr_blocks=[args.vpc_cidr],
                )
                for description, port in (
                    ("PostgreSQL", PORT),
                    ("Secrets Manager interface endpoint", 443),
                )
            ],
            tags=tags.named(f"{name}-db-rotation"),
            opts=child,
        )
        group = aws.ec2.SecurityGroup(
            f"{name}-db",
            description="PostgreSQL from the cluster's nodes and the rotation function only",
            vpc_id=args.vpc_id,
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    description="PostgreSQL from the nodes",
                    protocol="tcp",
                    from_port=PORT,
                    to_port=PORT,
                    security_groups=[args.client_security_group_id],
                ),
                aws.ec2.SecurityGroupIngressArgs(
                    description="PostgreSQL from the credential rotation function",
                    protocol="tcp",
                    from_port=PORT,
                    to_port=PORT,
                    security_groups=[rotation.id],
                ),
            ],
            egress=[],
            tags=tags.named(f"{name}-db"),
            opts=child,
        )
        parameters = aws.rds.ParameterGroup(
            f"{name}-db",
            family=PARAMETER_FAMILY,
            description=f"TLS-only PostgreSQL 16 for {name}",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(
                    name=key_name, value=value, apply_method="immediate"
                )
                for key_name, value in TLS_PARAMETERS.items()
            ],
            tags=tags.named(f"{name}-db"),
            opts=child,
        )
        # A new suffix whenever the instance is replaced or re-created, so that a second
        # destroy does not collide with the first one's snapshot.
        snapshot_suffix = random.RandomId(
            f"{name}-db-final-snapshot",
            byte_length=4,
            keepers={"identifier": identifier},
            opts=child,
        )
        recovering = args.restore_from_automated_backups_arn is not None
        primary = aws.rds.Instance(
            f"{name}-db",
            identifier=identifier,
            # A DR stack's primary: the replicated backups at their latest restorable time
            # (InstanceRestoreToPointInTime.source_db_instance_automated_backups_arn).
            restore_to_point_in_time=aws.rds.InstanceRestoreToPointInTimeArgs(
                source_db_instance_automated_backups_arn=args.restore_from_automated_backups_arn,
                use_latest_restorable_time=True,
            )
            if recovering
            else None,
            engine="postgres",
            engine_version=config.engine_version,
            instance_class=config.instance_class,
            storage_type="gp3",
            allocated_storage=config.allocated_storage_gb,
            max_allocated_storage=config.max_allocated_storage_gb,
            storage_encrypted=True,
            kms_key_id=key.arn,
            # A restored instance takes both from its source.
            db_name=None if recovering else DATABASE_NAME,
            username=None if recovering else MASTER_USERNAME,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=key.arn,
            port=PORT,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[group.id],
            publicly_accessible=False,
            parameter_group_name=parameters.name,
            ca_cert_identifier=CA_CERT_IDENTIFIER,
            multi_az=config.multi_az,
            deletion_protection=config.deletion_protection,
            backup_retention_period=config.backup_retention_days,
            backup_window="02:00-03:00",
            maintenance_window="sun:04:00-sun:05:00",
            copy_tags_to_snapshot=True,
            delete_automated_backups=False,
            skip_final_snapshot=False,
            final_snapshot_identifier=snapshot_suffix.hex.apply(
                lambda suffix: f"{name}-db-final-{suffix}"
            ),
            # Stated, not left to the default: Performance Insights' own console retires
            # and Database Insights takes over (https://docs.aws.amazon.com/AmazonRDS/
            # latest/UserGuide/USER_DatabaseInsights.html); "standard" is the free mode.
            database_insights_mode="standard",
            performance_insights_enabled=True,
            performance_insights_kms_key_id=key.arn,
            performance_insights_retention_period=config.performance_insights_retention_days,
            enabled_cloudwatch_logs_exports=list(EXPORTED_LOGS),
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=False,
            apply_immediately=False,
            tags=tags.named(f"{name}-db"),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(log_groups),
                # AWS moves the minor version forward; do not fight it on the next `up`.
                ignore_changes=["engineVersion"],
                protect=args.protect,
            ),
        )
        served = primary
        self.restored_identifier: pulumi.Output[str] | None = None
        if config.point_in_time_restore is not None:
            restored = self._restored(name, config, primary, key, subnets, group, parameters, tags)
            self.restored_identifier = restored.identifier
            if config.point_in_time_restore.serve:
                served = restored
        if config.replicate_backups:
            self._replicate_backups(name, args, primary)

        self.address = served.address
        self.port = PORT
        self.database_name = DATABASE_NAME
        self.username = MASTER_USERNAME
        self.identifier = served.identifier
        self.master_secret_arn = served.master_user_secrets.apply(
            lambda secrets: secrets[0].secret_arn or ""
        )
        self.key_arn = key.arn
        self.rotation_security_group_id = rotation.id
        self.register_outputs(
            {
                "address": self.address,
                "masterSecretArn": self.master_secret_arn,
                "restoredIdentifier": self.restored_identifier,
            }
        )

    def _restored(
        self,
        name: str,
        config: DatabaseConfig,
        primary: aws.rds.Instance,
        key: aws.kms.Key,
        subnets: aws.rds.SubnetGroup,
        group: aws.ec2.SecurityGroup,
        parameters: aws.rds.ParameterGroup,
        tags: Tags,
    ) -> aws.rds.Instance:
        """The primary as it was at `restoreTime`, next to it: same network, TLS parameters
        and key; its own RDS-managed master secret (the source's may have been rotated since
        the restore time). Removing the setting deletes it after a final snapshot."""
        assert config.point_in_time_restore is not None
        restore = config.point_in_time_restore
        stamp = restore.restore_time.replace("-", "").replace(":", "").lower()
        return aws.rds.Instance(
            f"{name}-db-pitr",
            identifier=f"{name}-db-pitr",
            restore_to_point_in_time=aws.rds.InstanceRestoreToPointInTimeArgs(
                source_db_instance_identifier=primary.identifier,
                restore_time=restore.restore_time,
            ),
            instance_class=config.instance_class,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=key.arn,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=key.arn,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[group.id],
            publicly_accessible=False,
            parameter_group_name=parameters.name,
            ca_cert_identifier=CA_CERT_IDENTIFIER,
            multi_az=config.multi_az if restore.serve else False,
            deletion_protection=config.deletion_protection if restore.serve else False,
            backup_retention_period=config.backup_retention_days,
            copy_tags_to_snapshot=True,
            delete_automated_backups=False,
            skip_final_snapshot=False,
            final_snapshot_identifier=f"{name}-db-pitr-{stamp}-final",
            # As the primary: stated, not left to the default (Database Insights).
            database_insights_mode="standard",
            performance_insights_enabled=True,
            performance_insights_kms_key_id=key.arn,
            performance_insights_retention_period=config.performance_insights_retention_days,
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=False,
            apply_immediately=True,
            tags=tags.named(f"{name}-db-pitr", role="point-in-time-restore"),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["engineVersion"]),
        )

    def _replicate_backups(self, name: str, args: DatabaseArgs, primary: aws.rds.Instance) -> None:
        """Snapshots and transaction logs copied to the DR region, encrypted there with a key
        of that region; "This resource has to be created in the destination region" (pulumi
        registry, rds.InstanceAutomatedBackupsReplication; docs.aws.amazon.com/AmazonRDS/
        latest/UserGuide/USER_ReplicateBackups.html)."""
        if args.replica_provider is None or args.replica_account is None:
            raise ValueError("replicateBackups needs the replica region's provider and account")
        key = encryption_key(
            f"{name}-db-dr",
            description=f"Replicated automated backups of {name}'s database",
            account=args.replica_account,
            tags=args.tags.named(f"{name}-db-dr"),
            parent=self,
            provider=args.replica_provider,
        )
        aws.rds.InstanceAutomatedBackupsReplication(
            f"{name}-db-backups-dr",
            source_db_instance_arn=primary.arn,
            kms_key_id=key.arn,
            retention_period=args.config.backup_retention_days,
            opts=pulumi.ResourceOptions(parent=self, provider=args.replica_provider),
        )
