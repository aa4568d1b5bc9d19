"""ElastiCache: TLS in transit, encryption at rest, RBAC user groups instead of a token."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import EnforcementLevel

from policies import elasticache
from tests.policies.support import check, resource_args

GROUP: dict[str, Any] = {
    "engine": "redis",
    "transitEncryptionEnabled": True,
    "atRestEncryptionEnabled": True,
    "userGroupIds": ["agent-prod-cache"],
    "automaticFailoverEnabled": True,
}


def test_every_elasticache_rule_is_mandatory() -> None:
    levels = {policy.enforcement_level for policy in elasticache.POLICIES}
    assert levels == {EnforcementLevel.MANDATORY}


@pytest.mark.parametrize("policy", elasticache.POLICIES, ids=lambda p: p.name)
def test_an_encrypted_authenticated_group_complies(policy: Any) -> None:
    assert check(policy, resource_args(elasticache.REPLICATION_GROUP, GROUP)) == []


@pytest.mark.parametrize(
    ("policy", "change", "expected"),
    [
        (elasticache.IN_TRANSIT, {"transitEncryptionEnabled": False}, "transit_encryption"),
        (elasticache.AT_REST, {"atRestEncryptionEnabled": False}, "at_rest_encryption"),
        (elasticache.RBAC, {"userGroupIds": []}, "user_group_ids"),
    ],
    ids=["in-transit", "at-rest", "rbac"],
)
def test_a_group_missing_a_control_is_reported(
    policy: Any, change: dict[str, Any], expected: str
) -> None:
    messages = check(policy, resource_args(elasticache.REPLICATION_GROUP, {**GROUP, **change}))
    assert len(messages) == 1
    assert expected in messages[0]


def test_unset_controls_are_violations_too() -> None:
    args = resource_args(elasticache.REPLICATION_GROUP, {"engine": "redis"}, name="cache")
    for policy in elasticache.POLICIES:
        assert len(check(policy, args)) == 1, policy.name


def test_a_shared_auth_token_is_reported_even_with_a_user_group() -> None:
    """The bad case of issue 16: one token with full access that nothing ever revokes."""
    for props in (
        {**GROUP, "authToken": "a-generated-token-of-sufficient-length"},
        {
            **{k: v for k, v in GROUP.items() if k != "userGroupIds"},
            "authToken": "a-generated-token-of-sufficient-length",
        },
    ):
        (message,) = check(elasticache.RBAC, resource_args(elasticache.REPLICATION_GROUP, props))
        assert "shared AUTH token" in message


def test_a_standalone_cluster_cannot_comply() -> None:
    args = resource_args(
        elasticache.CLUSTER, {"engine": "redis", "transitEncryptionEnabled": True}, name="solo"
    )
    assert check(elasticache.IN_TRANSIT, args) == []
    assert check(elasticache.AT_REST, args) == [
        "'solo' cannot encrypt at rest on its own: use an elasticache.ReplicationGroup, which "
        "supports it."
    ]
    assert len(check(elasticache.RBAC, args)) == 1


def test_a_member_of_a_group_is_judged_through_its_group() -> None:
    args = resource_args(elasticache.CLUSTER, {"replicationGroupId": "agent-cache"})
    assert all(check(policy, args) == [] for policy in elasticache.POLICIES)
