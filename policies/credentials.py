"""Credentials of the service's database, read from the service release's values against the
stack's RDS instances:

- no pod mounts the RDS master secret: no External Secrets entry of the release (the service's
  Secret, the migration's, the backup's, the retention's) names an instance's managed master
  secret, or any RDS-managed secret (`rds!...`: RDS names the secrets it manages so,
  https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-secrets-manager.html);
- the service's database user is not the master user: DATABASE_URL's user differs from every
  instance's `username`.

The master user is break-glass only; the workloads log in as their own roles, whose secrets
AWS rotates (infra.database_logins). During a preview a new instance's master secret ARN is
unknown: then only the `rds!` name rule can judge, and does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.config import config_schema
from policies.joins import known_strings
from policies.kubernetes import is_service_release
from policies.props import UNKNOWN, as_items, lookup_known

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_MANAGED_SECRET = ":secret:rds!"  # noqa: S105 - the name prefix RDS gives its secrets
# Where the chart reads External Secrets entries: the service's Secret and each job's own.
SECRET_DATA_PATHS = (
    "externalSecrets.data",
    "externalSecrets.migration.data",
    "externalSecrets.backup.data",
    "externalSecrets.retention.data",
)


def _master_secret_arns(databases: list[PolicyResource]) -> set[str]:
    arns: set[str] = set()
    for database in databases:
        for secret in as_items(lookup_known(database.props, "masterUserSecrets")):
            arn = lookup_known(secret, "secretArn") if isinstance(secret, Mapping) else None
            if isinstance(arn, str) and arn:
                arns.add(arn)
    return arns


def _secret_refs(values: Any) -> Iterator[tuple[str, str, str]]:
    """(values path, secretKey, remoteRef.key) of every known entry."""
    for path in SECRET_DATA_PATHS:
        for entry in as_items(lookup_known(values, path)):
            if not isinstance(entry, Mapping):
                continue
            key = lookup_known(entry, "remoteRef.key")
            if isinstance(key, str):
                yield path, str(entry.get("secretKey", "?")), key


def _service_releases(args: StackValidationArgs) -> list[PolicyResource]:
    config = args.get_config()
    return [r for r in args.resources if is_service_release(r.resource_type, r.props, config)]


def _databases(args: StackValidationArgs) -> list[PolicyResource]:
    return [r for r in args.resources if r.resource_type in (RDS_INSTANCE, RDS_CLUSTER)]


def _no_pod_mounts_the_master_secret(args: StackValidationArgs, report: ReportViolation) -> None:
    masters = _master_secret_arns(_databases(args))
    for release in _service_releases(args):
        values = lookup_known(release.props, "values")
        if values is UNKNOWN:
            continue
        for path, secret_key, key in _secret_refs(values):
            if key in masters or RDS_MANAGED_SECRET in key:
                report(
                    f"release '{release.name}' mounts the RDS master secret ({key}) as "
                    f"{secret_key} through {path}: the master user is break-glass only; use "
                    "the secret of the workload's own database login.",
                    release.urn,
                )


def _database_user(values: Any) -> str | None:
    url = lookup_known(values, "config.databaseUrl")
    if not isinstance(url, str) or not url:
        return None
    user = urlsplit(url).username
    return None if user is None else unquote(user)


def _app_user_is_not_the_master(args: StackValidationArgs, report: ReportViolation) -> None:
    masters: dict[str, str] = {}
    for database in _databases(args):
        for user in known_strings(database, "username", "masterUsername"):
            masters[user] = database.name
    for release in _service_releases(args):
        values = lookup_known(release.props, "values")
        if values is UNKNOWN:
            continue
        connects_as = _database_user(values)
        if connects_as is not None and connects_as in masters:
            report(
                f"release '{release.name}' connects as '{connects_as}', the master user of "
                f"'{masters[connects_as]}': the service logs in as its own role (agent_app), the "
                "master user is break-glass only.",
                release.urn,
            )


NO_MASTER_SECRET_IN_PODS = StackValidationPolicy(
    name="no-pod-mounts-the-rds-master-secret",
    description="No pod of the service's release mounts an RDS-managed master secret.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_no_pod_mounts_the_master_secret,
    config_schema=config_schema("serviceChart"),
)
APP_USER_NOT_MASTER = StackValidationPolicy(
    name="service-database-user-is-not-the-master",
    description="The service connects to PostgreSQL as its own role, not the master user.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_app_user_is_not_the_master,
    config_schema=config_schema("serviceChart"),
)

POLICIES = [NO_MASTER_SECRET_IN_PODS, APP_USER_NOT_MASTER]
