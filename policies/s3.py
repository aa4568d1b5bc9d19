"""S3: every bucket blocks public access (all four settings), keeps versions, encrypts with
KMS by default and refuses requests that are not over TLS.

pulumi_aws v7 configures a bucket through separate resources (`BucketPublicAccessBlock`,
`BucketVersioning`, `BucketServerSideEncryptionConfiguration`, `BucketPolicy`), so these
are stack policies: each joins the configuration resources to their bucket and reports a
bucket that none configures correctly. The deprecated inline arguments of `s3.Bucket`
(`versioning`, `serverSideEncryptionConfiguration`, `policy`) count too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.joins import known_strings, referenced
from policies.props import as_items, as_strings, is_true, lookup, parse_json_document

BUCKET_TYPES = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
PUBLIC_ACCESS_BLOCK = frozenset({"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"})
VERSIONING = frozenset(
    {"aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2"}
)
ENCRYPTION = frozenset(
    {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:"
        "BucketServerSideEncryptionConfigurationV2",
    }
)
BUCKET_POLICY = frozenset({"aws:s3/bucketPolicy:BucketPolicy"})
BLOCK_SETTINGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})

# A check returns what is wrong with one configuration, or None when it is right.
Check = Callable[[Mapping[str, Any]], str | None]


def _bucket_names(bucket: PolicyResource) -> list[str]:
    return known_strings(bucket, "bucket", "id")


def _review(
    args: StackValidationArgs,
    report: ReportViolation,
    *,
    kinds: frozenset[str],
    check: Check,
    inline: Check | None,
    missing: str,
) -> None:
    """Report each wrong configuration, and each bucket that has none at all."""
    buckets = [r for r in args.resources if r.resource_type in BUCKET_TYPES]
    configured: set[str] = set()
    for resource in args.resources:
        if resource.resource_type not in kinds:
            continue
        bucket = referenced(resource, "bucket", buckets, _bucket_names)
        if bucket is not None:
            configured.add(bucket.urn)
        problem = check(resource.props)
        if problem is not None:
            on = f"bucket '{bucket.name}'" if bucket is not None else "its bucket"
            report(f"'{resource.name}' on {on}: {problem}.", resource.urn)
    for bucket in buckets:
        if bucket.urn in configured:
            continue
        if inline is not None and inline(bucket.props) is None:
            continue
        report(f"bucket '{bucket.name}' {missing}.", bucket.urn)


def _block_problem(props: Mapping[str, Any]) -> str | None:
    off = [setting for setting in BLOCK_SETTINGS if not is_true(lookup(props, setting))]
    return f"{', '.join(off)} not true" if off else None


def _versioning_problem(props: Mapping[str, Any]) -> str | None:
    status = lookup(props, "versioningConfiguration.status")
    return None if status == "Enabled" else f"versioning status is {status or 'unset'}"


def _inline_versioning_problem(props: Mapping[str, Any]) -> str | None:
    return None if is_true(lookup(props, "versioning.enabled")) else "not versioned inline"


def _kms_by_default(rules: Any) -> str | None:
    algorithms = [
        lookup(rule, "applyServerSideEncryptionByDefault.sseAlgorithm") for rule in as_items(rules)
    ]
    if any(algorithm in KMS_ALGORITHMS for algorithm in algorithms):
        return None
    shown = ", ".join(str(a) for a in algorithms if a) or "none"
    return f"default encryption is {shown}, not aws:kms"


def _encryption_problem(props: Mapping[str, Any]) -> str | None:
    return _kms_by_default(lookup(props, "rules"))


def _inline_encryption_problem(props: Mapping[str, Any]) -> str | None:
    return _kms_by_default(lookup(props, "serverSideEncryptionConfiguration.rule"))


def _denies_plain_http(statement: Mapping[str, Any]) -> bool:
    if str(statement.get("Effect", "")).lower() != "deny":
        return False
    principal = statement.get("Principal")
    if isinstance(principal, Mapping):
        principal = principal.get("AWS")
    if "*" not in as_strings(principal):
        return False
    actions = {action.lower() for action in as_strings(statement.get("Action"))}
    if not actions & {"s3:*", "*"}:
        return False
    resources = as_strings(statement.get("Resource"))
    covers_bucket = any("/" not in resource for resource in resources)
    covers_objects = any(resource.endswith("/*") for resource in resources)
    if not (covers_bucket and covers_objects):
        return False
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return False
    for operator, tests in condition.items():
        if str(operator).lower() != "bool" or not isinstance(tests, Mapping):
            continue
        for key, value in tests.items():
            if str(key).lower() == "aws:securetransport" and any(
                str(item).lower() == "false" for item in as_items(value)
            ):
                return True
    return False


def _tls_problem(props: Mapping[str, Any]) -> str | None:
    raw = lookup(props, "policy")
    if raw is None:
        return "no policy document"
    document = parse_json_document(raw)
    if document is None:
        return "the policy is not a JSON policy document"
    statements = [s for s in as_items(document.get("Statement")) if isinstance(s, Mapping)]
    if any(_denies_plain_http(statement) for statement in statements):
        return None
    return (
        'no statement denies "s3:*" to every principal on the bucket and its objects '
        'when "aws:SecureTransport" is "false"'
    )


def _public_access_block(args: StackValidationArgs, report: ReportViolation) -> None:
    _review(
        args,
        report,
        kinds=PUBLIC_ACCESS_BLOCK,
        check=_block_problem,
        inline=None,
        missing="has no BucketPublicAccessBlock with all four settings true",
    )


def _versioning(args: StackValidationArgs, report: ReportViolation) -> None:
    _review(
        args,
        report,
        kinds=VERSIONING,
        check=_versioning_problem,
        inline=_inline_versioning_problem,
        missing='is not versioned: add a BucketVersioning with status "Enabled"',
    )


def _encryption(args: StackValidationArgs, report: ReportViolation) -> None:
    _review(
        args,
        report,
        kinds=ENCRYPTION,
        check=_encryption_problem,
        inline=_inline_encryption_problem,
        missing="does not encrypt with KMS by default: add a "
        'BucketServerSideEncryptionConfiguration with sse_algorithm "aws:kms"',
    )


def _tls_only(args: StackValidationArgs, report: ReportViolation) -> None:
    _review(
        args,
        report,
        kinds=BUCKET_POLICY,
        check=_tls_problem,
        inline=_tls_problem,
        missing="accepts plain HTTP: add a BucketPolicy denying s3:* when "
        "aws:SecureTransport is false",
    )


PUBLIC_ACCESS_BLOCKED = StackValidationPolicy(
    name="s3-public-access-block",
    description="S3 buckets block all public access.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_public_access_block,
)
VERSIONED = StackValidationPolicy(
    name="s3-versioning",
    description="S3 buckets keep object versions.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_versioning,
)
KMS_ENCRYPTED = StackValidationPolicy(
    name="s3-sse-kms",
    description="S3 buckets encrypt objects with KMS by default.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_encryption,
)
TLS_ONLY = StackValidationPolicy(
    name="s3-tls-only-policy",
    description="S3 bucket policies deny requests that are not over TLS.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_tls_only,
)

POLICIES = [PUBLIC_ACCESS_BLOCKED, VERSIONED, KMS_ENCRYPTED, TLS_ONLY]
