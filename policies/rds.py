"""RDS: encrypted storage, never public, a week of backups, and in production deletion
protection and multi-AZ.

A read replica (`replicateSourceDb` set) is exempt from the backup and multi-AZ rules: it is
itself the copy in another zone, and RDS keeps no automated backups of a PostgreSQL replica;
the primary carries both.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.config import config_schema, integer, is_production
from policies.joins import known_strings, referenced
from policies.props import as_number, is_true, lookup, lookup_known

INSTANCE = "aws:rds/instance:Instance"
CLUSTER = "aws:rds/cluster:Cluster"  # Aurora: storage, backups and deletion protection live here
CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"


def _is_replica(args: ResourceValidationArgs) -> bool:
    return bool(lookup(args.props, "replicateSourceDb"))


def _storage_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (INSTANCE, CLUSTER):
        return
    if not is_true(lookup(args.props, "storageEncrypted")):
        report(
            f"'{args.name}' stores data unencrypted: set storage_encrypted=True "
            "(with kms_key_id for a customer-managed key).",
            None,
        )


def _not_public(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (INSTANCE, CLUSTER_INSTANCE):
        return
    if is_true(lookup(args.props, "publiclyAccessible")):
        report(
            f"'{args.name}' is publicly accessible: set publicly_accessible=False and keep it "
            "in private subnets.",
            None,
        )


def _backup_retention(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (INSTANCE, CLUSTER) or _is_replica(args):
        return
    minimum = integer(args.get_config(), "minBackupRetentionDays")
    days = as_number(lookup(args.props, "backupRetentionPeriod"))
    if days is None or days < minimum:
        shown = "unset" if days is None else f"{days:g} days"
        report(
            f"'{args.name}' keeps automated backups for {shown}: set "
            f"backup_retention_period to at least {minimum}.",
            None,
        )


def _deletion_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (INSTANCE, CLUSTER):
        return
    if not is_production(args.urn, args.get_config()):
        return
    if not is_true(lookup(args.props, "deletionProtection")):
        report(
            f"'{args.name}' is a production database without deletion protection: set "
            "deletion_protection=True.",
            None,
        )


def _multi_az(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != INSTANCE or _is_replica(args):
        return
    if not is_production(args.urn, args.get_config()):
        return
    if not is_true(lookup(args.props, "multiAz")):
        report(
            f"'{args.name}' is a production database in a single availability zone: set "
            "multi_az=True.",
            None,
        )


def _instance_names(instance: PolicyResource) -> list[str]:
    # `replicate_source_db` takes the source's identifier, or its ARN across regions.
    return known_strings(instance, "identifier", "arn", "id")


def _replica_of_managed_password(args: StackValidationArgs, report: ReportViolation) -> None:
    """RDS creates no read replica of a source whose master password Secrets Manager manages
    (all engines but SQL Server): https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/
    rds-secrets-manager.html, Limitations; terraform-aws-rds's replica example turns the
    managed password off on its source for this reason."""
    instances = [r for r in args.resources if r.resource_type == INSTANCE]
    for replica in instances:
        if lookup_known(replica.props, "replicateSourceDb") is None:
            continue
        sources = [i for i in instances if i is not replica]
        source = referenced(replica, "replicateSourceDb", sources, _instance_names)
        if source is not None and is_true(lookup_known(source.props, "manageMasterUserPassword")):
            report(
                f"'{replica.name}' replicates '{source.name}', whose master password Secrets "
                "Manager manages: RDS refuses to create that replica. Drop the replica (Multi-AZ "
                "covers an instance or zone), or manage the source's password yourself.",
                replica.urn,
            )


STORAGE_ENCRYPTED = ResourceValidationPolicy(
    name="rds-storage-encrypted",
    description="RDS databases encrypt their storage at rest.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_storage_encrypted,
)
NOT_PUBLIC = ResourceValidationPolicy(
    name="rds-not-publicly-accessible",
    description="RDS databases are not reachable from the internet.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_not_public,
)
BACKUP_RETENTION = ResourceValidationPolicy(
    name="rds-backup-retention",
    description="RDS databases keep automated backups for at least the configured days.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_backup_retention,
    config_schema=config_schema("minBackupRetentionDays"),
)
DELETION_PROTECTION = ResourceValidationPolicy(
    name="rds-deletion-protection-in-production",
    description="Production RDS databases have deletion protection on.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_deletion_protection,
    config_schema=config_schema("productionStacks"),
)
MULTI_AZ = ResourceValidationPolicy(
    name="rds-multi-az-in-production",
    description="Production RDS instances run multi-AZ.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_multi_az,
    config_schema=config_schema("productionStacks"),
)

NO_REPLICA_OF_MANAGED_PASSWORD = StackValidationPolicy(
    name="rds-no-replica-of-managed-password-source",
    description="No RDS read replica of a source whose password Secrets Manager manages.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_replica_of_managed_password,
)

POLICIES = [
    STORAGE_ENCRYPTED,
    NOT_PUBLIC,
    BACKUP_RETENTION,
    DELETION_PROTECTION,
    MULTI_AZ,
    NO_REPLICA_OF_MANAGED_PASSWORD,
]
