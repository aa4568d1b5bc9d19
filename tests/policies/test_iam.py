"""IAM: no "*" on "*", no inline administrator policies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel

from policies import iam
from tests.policies.support import check, resource_args

READ_OWN_SECRETS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ReadOwnSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:agent-*"],
        }
    ],
}
EVERYTHING = {"Effect": "Allow", "Action": "*", "Resource": "*"}
ALL_OF_IAM = {
    "Sid": "Iam",
    "Effect": "Allow",
    "Action": ["IAM:*"],
    "Resource": ["arn:aws:iam::1:role/x"],
}


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_both_iam_rules_are_mandatory() -> None:
    assert {policy.enforcement_level for policy in iam.POLICIES} == {EnforcementLevel.MANDATORY}


@pytest.mark.parametrize("policy", iam.POLICIES, ids=lambda p: p.name)
@pytest.mark.parametrize(
    ("type_", "props"),
    [
        (iam.MANAGED_POLICY, {"policy": json.dumps(READ_OWN_SECRETS)}),
        (
            "aws:iam/rolePolicy:RolePolicy",
            {"role": "agent", "policy": json.dumps(READ_OWN_SECRETS)},
        ),
        (iam.ROLE, {"inlinePolicies": [{"name": "read", "policy": json.dumps(READ_OWN_SECRETS)}]}),
        # A document given as an object (PolicyDocumentArgs) rather than a string.
        (iam.MANAGED_POLICY, {"policy": READ_OWN_SECRETS}),
        # Denying everything is how guardrails are written.
        (iam.MANAGED_POLICY, {"policy": document({**EVERYTHING, "Effect": "Deny"})}),
    ],
    ids=["managed", "inline", "role-inline", "object", "deny"],
)
def test_least_privilege_documents_comply(policy: Any, type_: str, props: dict[str, Any]) -> None:
    assert check(policy, resource_args(type_, props)) == []


@pytest.mark.parametrize(
    "type_",
    [iam.MANAGED_POLICY, "aws:iam/userPolicy:UserPolicy", "aws:iam/groupPolicy:GroupPolicy"],
)
@pytest.mark.parametrize("action", ["*", ["s3:GetObject", "*:*"]], ids=["star", "star-star"])
def test_star_on_star_is_reported_wherever_it_is(type_: str, action: Any) -> None:
    props = {"policy": document({**EVERYTHING, "Action": action, "Sid": "All"})}
    messages = check(iam.NO_WILDCARD_ADMIN, resource_args(type_, props, name="admin"))
    assert messages == [
        '\'admin\' policy, statement All: allows "*" actions on "*" resources: name the '
        "actions and resources."
    ]


def test_a_wildcard_action_on_named_resources_is_not_star_on_star() -> None:
    props = {"policy": document({**EVERYTHING, "Resource": ["arn:aws:s3:::bucket/*"]})}
    assert check(iam.NO_WILDCARD_ADMIN, resource_args(iam.MANAGED_POLICY, props)) == []


@pytest.mark.parametrize("statement", [EVERYTHING, ALL_OF_IAM], ids=["everything", "all-of-iam"])
def test_inline_admin_is_reported_on_inline_policies(statement: dict[str, Any]) -> None:
    role_policy = resource_args("aws:iam/rolePolicy:RolePolicy", {"policy": document(statement)})
    assert len(check(iam.NO_INLINE_ADMIN, role_policy)) == 1
    role = resource_args(
        iam.ROLE, {"inlinePolicies": [{"name": "ops", "policy": document(statement)}]}, name="r"
    )
    messages = check(iam.NO_INLINE_ADMIN, role)
    assert len(messages) == 1
    assert messages[0].startswith("'r' inline policy 'ops', statement ")


def test_a_managed_admin_policy_is_not_inline() -> None:
    args = resource_args(iam.MANAGED_POLICY, {"policy": document(ALL_OF_IAM)})
    assert check(iam.NO_INLINE_ADMIN, args) == []


@pytest.mark.parametrize("policy", iam.POLICIES, ids=lambda p: p.name)
def test_an_unreadable_document_fails_closed(policy: Any) -> None:
    args = resource_args("aws:iam/rolePolicy:RolePolicy", {"policy": "{not json"}, name="broken")
    assert check(policy, args) == ["'broken' policy is not a JSON policy document."]
