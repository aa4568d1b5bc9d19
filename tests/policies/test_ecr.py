"""ECR: immutable tags and scan on push."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import EnforcementLevel

from policies import ecr
from tests.policies.support import check, resource_args

REPOSITORY: dict[str, Any] = {
    "imageTagMutability": "IMMUTABLE",
    "imageScanningConfiguration": {"scanOnPush": True},
    "encryptionConfigurations": [{"encryptionType": "KMS"}],
}


def test_every_ecr_rule_is_mandatory() -> None:
    assert {policy.enforcement_level for policy in ecr.POLICIES} == {EnforcementLevel.MANDATORY}


@pytest.mark.parametrize("policy", ecr.POLICIES, ids=lambda p: p.name)
def test_an_immutable_scanned_repository_complies(policy: Any) -> None:
    assert check(policy, resource_args(ecr.REPOSITORY, REPOSITORY)) == []


@pytest.mark.parametrize(
    "mutability", [None, "MUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION"]
)
def test_any_tag_that_can_move_is_reported(mutability: str | None) -> None:
    props = {**REPOSITORY, "imageTagMutability": mutability}
    messages = check(ecr.IMMUTABLE_TAGS, resource_args(ecr.REPOSITORY, props, name="agent"))
    assert messages == [
        f"'agent' has image_tag_mutability={mutability or 'MUTABLE'}: set it to IMMUTABLE."
    ]


@pytest.mark.parametrize(
    "scanning", [{"scanOnPush": False}, {}, None], ids=["off", "unset", "no-block"]
)
def test_a_repository_that_does_not_scan_is_reported(scanning: dict[str, Any] | None) -> None:
    props = {**REPOSITORY, "imageScanningConfiguration": scanning}
    messages = check(ecr.SCAN_ON_PUSH, resource_args(ecr.REPOSITORY, props))
    assert len(messages) == 1
    assert "scan_on_push=True" in messages[0]
