"""Stack level: every stack has a backup bucket, and the service's release is wired to it
(its values name a bucket of this stack at `backupBucketValue`, `config.backupBucket` by
default).

During a preview a new bucket's name is unknown; the release's values then still depend on
the bucket (`property_dependencies`), which is enough to call it wired.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.config import config_schema, string
from policies.joins import known_strings
from policies.kubernetes import is_service_release
from policies.props import UNKNOWN, lookup, lookup_known
from policies.s3 import BUCKET_TYPES

VALUES = "values"


def _bucket_names(buckets: list[PolicyResource]) -> set[str]:
    return {name for bucket in buckets for name in known_strings(bucket, "bucket", "id")}


def _depends_on_a_bucket(release: PolicyResource, buckets: list[PolicyResource]) -> bool:
    urns = {bucket.urn for bucket in buckets}
    return any(dep.urn in urns for dep in release.property_dependencies.get(VALUES, []))


def _backup_bucket_wired(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    path = string(config, "backupBucketValue")
    chart = string(config, "serviceChart")
    buckets = [r for r in args.resources if r.resource_type in BUCKET_TYPES]
    releases = [r for r in args.resources if is_service_release(r.resource_type, r.props, config)]
    if not buckets:
        report("the stack has no S3 bucket for database backups.", None)
    if not releases:
        report(f"the stack has no Helm release of the '{chart}' chart to wire backups to.", None)
    for release in releases:
        name = lookup_known(release.props, f"{VALUES}.{path}")
        if name is UNKNOWN:
            if _depends_on_a_bucket(release, buckets):
                continue
            # Neither a name nor a dependency to judge by: let the CLI say it cannot tell.
            lookup(release.props, f"{VALUES}.{path}")
        if not isinstance(name, str) or not name:
            report(
                f"release '{release.name}' sets no {path}: backups have nowhere to go.", release.urn
            )
        elif name not in _bucket_names(buckets) and not _depends_on_a_bucket(release, buckets):
            report(
                f"release '{release.name}' sends backups to '{name}', which is not a bucket of "
                "this stack.",
                release.urn,
            )


BACKUP_BUCKET_WIRED = StackValidationPolicy(
    name="stack-backup-bucket-wired",
    description="Every stack has a backup bucket wired to the service's release.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_backup_bucket_wired,
    config_schema=config_schema("serviceChart", "backupBucketValue"),
)

POLICIES = [BACKUP_BUCKET_WIRED]
