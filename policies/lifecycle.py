"""Stateful resources of the protected stacks (staging and prod by default) carry Pulumi's
`protect` option: a `pulumi destroy`, a deleted line, or a change that forces a replacement
stops at the data instead of deleting it (https://www.pulumi.com/docs/iac/concepts/options/protect/).
Unprotecting is a deliberate `pulumi state unprotect`."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from policies.config import config_schema, in_stacks

STATEFUL_TYPES = frozenset(
    {
        "aws:rds/instance:Instance",
        "aws:rds/cluster:Cluster",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketV2:BucketV2",
        "aws:ecr/repository:Repository",
        "aws:dynamodb/table:Table",
        "aws:efs/fileSystem:FileSystem",
    }
)


def _protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in STATEFUL_TYPES:
        return
    if not in_stacks(args.urn, args.get_config(), "protectedStacks"):
        return
    if not args.opts.protect:
        report(
            f"'{args.name}' holds data but is not protected: set "
            "opts=ResourceOptions(protect=True) so that no destroy or replacement deletes it.",
            None,
        )


STATEFUL_PROTECTED = ResourceValidationPolicy(
    name="stateful-resources-protected",
    description="In protected stacks, resources that hold data carry Pulumi's protect option.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_protected,
    config_schema=config_schema("protectedStacks"),
)

POLICIES = [STATEFUL_PROTECTED]
