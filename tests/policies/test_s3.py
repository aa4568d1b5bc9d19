"""S3: public access block, versioning, SSE-KMS and a TLS-only policy, joined per bucket."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, PolicyResource
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policies import s3
from tests.policies.support import check_stack, policy_resource

BUCKET = "aws:s3/bucket:Bucket"
BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
NAME = "agent-prod-backups-1a2b3c"
ARN = f"arn:aws:s3:::{NAME}"

BLOCK_ALL = {
    "blockPublicAcls": True,
    "blockPublicPolicy": True,
    "ignorePublicAcls": True,
    "restrictPublicBuckets": True,
}
ENABLED = {"versioningConfiguration": {"status": "Enabled"}}
KMS = {
    "rules": [
        {
            "applyServerSideEncryptionByDefault": {
                "sseAlgorithm": "aws:kms",
                "kmsMasterKeyId": "arn:aws:kms:eu-west-1:123456789012:key/abc",
            },
            "bucketKeyEnabled": True,
        }
    ]
}
DENY_PLAIN_HTTP = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": [ARN, f"{ARN}/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def tls_policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"policy": json.dumps({"Version": "2012-10-17", "Statement": list(statements)})}


CONFIGURATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "block": (BLOCK, BLOCK_ALL),
    "versioning": (VERSIONING, ENABLED),
    "encryption": (ENCRYPTION, KMS),
    "policy": (POLICY, tls_policy(DENY_PLAIN_HTTP)),
}
RULES = {
    "block": s3.PUBLIC_ACCESS_BLOCKED,
    "versioning": s3.VERSIONED,
    "encryption": s3.KMS_ENCRYPTED,
    "policy": s3.TLS_ONLY,
}


def stack(
    link: str = "name",
    bucket_name: Any = NAME,
    overrides: dict[str, dict[str, Any] | None] | None = None,
) -> list[PolicyResource]:
    """A bucket and its four configurations, joined as a preview (`property`), an offline
    recording (`name`) or a recording without property dependencies (`dependency`) sees them.
    An override replaces one configuration's properties; None leaves it out."""
    bucket = policy_resource(BUCKET, "backups", {"bucket": bucket_name, "arn": ARN})
    resources = [bucket]
    overrides = overrides or {}
    for kind, (type_, props) in CONFIGURATIONS.items():
        if kind in overrides and overrides[kind] is None:
            continue
        props = overrides.get(kind) or props
        if link == "property":
            resource = policy_resource(
                type_,
                f"backups-{kind}",
                {**props, "bucket": UNKNOWN_STRING_VALUE},
                property_dependencies={"bucket": [bucket]},
            )
        elif link == "name":
            resource = policy_resource(type_, f"backups-{kind}", {**props, "bucket": NAME})
        else:
            resource = policy_resource(type_, f"backups-{kind}", props, dependencies=[bucket])
        resources.append(resource)
    return resources


def test_every_s3_rule_is_mandatory() -> None:
    assert {policy.enforcement_level for policy in s3.POLICIES} == {EnforcementLevel.MANDATORY}


@pytest.mark.parametrize("policy", s3.POLICIES, ids=lambda p: p.name)
@pytest.mark.parametrize("link", ["property", "name", "dependency"])
def test_a_fully_configured_bucket_complies(policy: Any, link: str) -> None:
    bucket_name = UNKNOWN_STRING_VALUE if link == "property" else NAME
    assert check_stack(policy, stack(link, bucket_name)) == []


@pytest.mark.parametrize("kind", list(RULES))
def test_a_bucket_without_a_configuration_is_reported(kind: str) -> None:
    resources = stack(overrides={kind: None})
    reported = check_stack(RULES[kind], resources)
    assert len(reported) == 1
    assert reported[0].urn == resources[0].urn
    assert reported[0].message.startswith("bucket 'backups' ")
    others = [rule for name, rule in RULES.items() if name != kind]
    assert all(check_stack(rule, resources) == [] for rule in others)


@pytest.mark.parametrize(
    ("kind", "props", "expected"),
    [
        ("block", {**BLOCK_ALL, "restrictPublicBuckets": False}, "restrictPublicBuckets not true"),
        ("block", {"blockPublicAcls": True}, "blockPublicPolicy, ignorePublicAcls, restrictPub"),
        ("versioning", {"versioningConfiguration": {"status": "Suspended"}}, "status is Suspended"),
        (
            "encryption",
            {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]},
            "AES256, not aws:kms",
        ),
        ("policy", tls_policy({**DENY_PLAIN_HTTP, "Effect": "Allow"}), "no statement denies"),
        ("policy", tls_policy({**DENY_PLAIN_HTTP, "Resource": ARN}), "no statement denies"),
        ("policy", tls_policy({**DENY_PLAIN_HTTP, "Action": "s3:GetObject"}), "no statement"),
        (
            "policy",
            tls_policy({**DENY_PLAIN_HTTP, "Principal": {"AWS": "arn:aws:iam::1:root"}}),
            "no st",
        ),
        (
            "policy",
            tls_policy({**DENY_PLAIN_HTTP, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}),
            "no st",
        ),
        ("policy", {"policy": "not json"}, "not a JSON policy document"),
    ],
    ids=[
        "block-one-off",
        "block-three-unset",
        "versioning-suspended",
        "sse-s3",
        "policy-allows",
        "policy-bucket-only",
        "policy-one-action",
        "policy-one-principal",
        "policy-wrong-condition",
        "policy-unreadable",
    ],
)
def test_a_wrong_configuration_is_reported_on_itself(
    kind: str, props: dict[str, Any], expected: str
) -> None:
    resources = stack(overrides={kind: props})
    reported = check_stack(RULES[kind], resources)
    assert len(reported) == 1
    configuration = next(r for r in resources if r.name == f"backups-{kind}")
    assert reported[0].urn == configuration.urn
    assert reported[0].message.startswith(f"'backups-{kind}' on bucket 'backups': ")
    assert expected in reported[0].message


def test_equivalent_tls_statements_comply() -> None:
    variant = {
        **DENY_PLAIN_HTTP,
        "Principal": {"AWS": ["*"]},
        "Action": ["*"],
        "Condition": {"bool": {"aws:securetransport": [False]}},
    }
    assert check_stack(s3.TLS_ONLY, stack(overrides={"policy": tls_policy(variant)})) == []


def test_deprecated_inline_configuration_counts() -> None:
    bucket = policy_resource(
        BUCKET,
        "legacy",
        {
            "bucket": NAME,
            "versioning": {"enabled": True},
            "serverSideEncryptionConfiguration": {
                "rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}
            },
            **tls_policy(DENY_PLAIN_HTTP),
        },
    )
    for rule in (s3.VERSIONED, s3.KMS_ENCRYPTED, s3.TLS_ONLY):
        assert check_stack(rule, [bucket]) == [], rule.name
    assert len(check_stack(s3.PUBLIC_ACCESS_BLOCKED, [bucket])) == 1


def test_a_configuration_for_a_bucket_outside_the_stack_is_still_checked() -> None:
    versioning = policy_resource(
        VERSIONING, "elsewhere", {"bucket": "someone-elses", "versioningConfiguration": {}}
    )
    reported = check_stack(s3.VERSIONED, [versioning])
    assert [r.message for r in reported] == [
        "'elsewhere' on its bucket: versioning status is unset."
    ]


def test_each_bucket_is_judged_on_its_own() -> None:
    first = stack()
    second = policy_resource(BUCKET, "scratch", {"bucket": "scratch-1"})
    reported = check_stack(s3.VERSIONED, [*first, second])
    assert [r.urn for r in reported] == [second.urn]
