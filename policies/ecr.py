"""ECR: immutable tags (a tag names one image forever) and a vulnerability scan on push."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from policies.props import is_true, lookup

REPOSITORY = "aws:ecr/repository:Repository"
IMMUTABLE = "IMMUTABLE"


def _immutable_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != REPOSITORY:
        return
    # Unset means MUTABLE; the *_WITH_EXCLUSION modes leave some tags movable.
    mutability = lookup(args.props, "imageTagMutability") or "MUTABLE"
    if mutability != IMMUTABLE:
        report(f"'{args.name}' has image_tag_mutability={mutability}: set it to {IMMUTABLE}.", None)


def _scan_on_push(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != REPOSITORY:
        return
    if not is_true(lookup(args.props, "imageScanningConfiguration.scanOnPush")):
        report(
            f"'{args.name}' does not scan pushed images: set "
            "image_scanning_configuration.scan_on_push=True.",
            None,
        )


IMMUTABLE_TAGS = ResourceValidationPolicy(
    name="ecr-immutable-tags",
    description="ECR repositories have immutable image tags.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_immutable_tags,
)
SCAN_ON_PUSH = ResourceValidationPolicy(
    name="ecr-scan-on-push",
    description="ECR repositories scan every pushed image.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_scan_on_push,
)

POLICIES = [IMMUTABLE_TAGS, SCAN_ON_PUSH]
