"""EC2: instances and launch templates (the EKS nodes) answer the metadata service over
IMDSv2 only, so a request forged through an application (SSRF) cannot read the node role's
credentials (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html)."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from policies.props import lookup

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"
REQUIRED = "required"


def _imdsv2(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (LAUNCH_TEMPLATE, INSTANCE):
        return
    if lookup(args.props, "metadataOptions.httpEndpoint") == "disabled":
        return  # no metadata service at all
    tokens = lookup(args.props, "metadataOptions.httpTokens")
    if tokens != REQUIRED:
        shown = tokens or "unset (IMDSv1 allowed)"
        report(
            f"'{args.name}' has metadata_options http_tokens {shown}: set "
            f'http_tokens="{REQUIRED}" (IMDSv2 only).',
            None,
        )


IMDSV2_REQUIRED = ResourceValidationPolicy(
    name="ec2-imdsv2-required",
    description="Launch templates and instances require IMDSv2 (httpTokens=required).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_imdsv2,
)

POLICIES = [IMDSV2_REQUIRED]
