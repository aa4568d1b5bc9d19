"""EKS: private endpoint (or public to listed CIDRs), secrets encryption, control-plane logs."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from policies import eks
from tests.policies.support import check, resource_args

KEY = "arn:aws:kms:eu-west-1:123456789012:key/abc"
CLUSTER: dict[str, Any] = {
    "vpcConfig": {
        "subnetIds": ["subnet-a", "subnet-b"],
        "endpointPrivateAccess": True,
        "endpointPublicAccess": False,
    },
    "encryptionConfig": {"provider": {"keyArn": KEY}, "resources": ["secrets"]},
    "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
    "version": "1.35",
    "upgradePolicy": {"supportType": "STANDARD"},
}
RESOURCE_POLICIES = [p for p in eks.POLICIES if isinstance(p, ResourceValidationPolicy)]


def with_vpc(**vpc: Any) -> dict[str, Any]:
    return {**CLUSTER, "vpcConfig": {"subnetIds": ["subnet-a"], **vpc}}


def test_every_eks_rule_is_mandatory() -> None:
    assert {policy.enforcement_level for policy in eks.POLICIES} == {EnforcementLevel.MANDATORY}


@pytest.mark.parametrize("policy", RESOURCE_POLICIES, ids=lambda p: p.name)
def test_a_private_encrypted_logged_cluster_complies(policy: Any) -> None:
    config = {"supportCheckDate": "2026-11-30"}
    assert check(policy, resource_args(eks.CLUSTER, CLUSTER, config=config)) == []


@pytest.mark.parametrize(
    "vpc",
    [
        {"endpointPrivateAccess": True, "endpointPublicAccess": False},
        {"endpointPrivateAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]},
        {"endpointPublicAccess": True, "publicAccessCidrs": ["198.51.100.7/32"]},
    ],
    ids=["private", "private-and-listed-public", "listed-public"],
)
def test_private_or_listed_public_endpoints_comply(vpc: dict[str, Any]) -> None:
    assert check(eks.PRIVATE_ENDPOINT, resource_args(eks.CLUSTER, with_vpc(**vpc))) == []


@pytest.mark.parametrize(
    ("vpc", "expected"),
    [
        ({}, "0.0.0.0/0 (the default)"),
        ({"endpointPrivateAccess": True}, "0.0.0.0/0 (the default)"),
        ({"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}, "(0.0.0.0/0)"),
        ({"publicAccessCidrs": ["10.0.0.0/8", "::/0"]}, "(10.0.0.0/8, ::/0)"),
        ({"endpointPublicAccess": False}, "has no API endpoint"),
    ],
    ids=["defaults", "public-by-default", "open-cidr", "open-ipv6", "no-endpoint"],
)
def test_an_endpoint_open_to_the_internet_is_reported(vpc: dict[str, Any], expected: str) -> None:
    messages = check(eks.PRIVATE_ENDPOINT, resource_args(eks.CLUSTER, with_vpc(**vpc)))
    assert len(messages) == 1
    assert expected in messages[0]


@pytest.mark.parametrize(
    "encryption",
    [None, {"provider": {"keyArn": KEY}, "resources": []}, {"resources": ["secrets"]}],
    ids=["none", "no-secrets", "no-key"],
)
def test_a_cluster_without_secrets_encryption_is_reported(encryption: Any) -> None:
    props = {**CLUSTER, "encryptionConfig": encryption}
    messages = check(eks.SECRETS_ENCRYPTION, resource_args(eks.CLUSTER, props, name="agent"))
    assert len(messages) == 1
    assert messages[0].startswith("'agent' does not envelope-encrypt Kubernetes secrets")


def test_missing_control_plane_logs_are_named() -> None:
    props = {**CLUSTER, "enabledClusterLogTypes": ["api"]}
    messages = check(eks.CONTROL_PLANE_LOGS, resource_args(eks.CLUSTER, props, name="agent"))
    assert messages == [
        "'agent' does not log audit, authenticator: add them to enabled_cluster_log_types."
    ]


def test_the_required_log_types_come_from_config() -> None:
    props = {**CLUSTER, "enabledClusterLogTypes": ["api", "audit", "authenticator"]}
    assert check(eks.CONTROL_PLANE_LOGS, resource_args(eks.CLUSTER, props)) == []
    config = {"requiredClusterLogTypes": ["api", "audit", "authenticator", "scheduler"]}
    messages = check(eks.CONTROL_PLANE_LOGS, resource_args(eks.CLUSTER, props, config=config))
    assert len(messages) == 1
    assert "scheduler" in messages[0]
