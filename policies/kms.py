"""KMS: customer-managed symmetric keys rotate their key material (yearly, or on the period
set). Asymmetric and HMAC keys cannot rotate automatically and are left alone
(https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html)."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from policies.props import is_true, lookup

KEY = "aws:kms/key:Key"
SYMMETRIC = "SYMMETRIC_DEFAULT"


def _rotation(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != KEY:
        return
    spec = lookup(args.props, "customerMasterKeySpec") or SYMMETRIC
    if spec != SYMMETRIC:
        return
    if not is_true(lookup(args.props, "enableKeyRotation")):
        report(
            f"'{args.name}' does not rotate its key material: set enable_key_rotation=True.",
            None,
        )


KEY_ROTATION = ResourceValidationPolicy(
    name="kms-key-rotation",
    description="Symmetric KMS keys rotate their key material.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_rotation,
)

POLICIES = [KEY_ROTATION]
