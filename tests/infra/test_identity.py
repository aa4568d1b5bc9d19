"""Every IAM document the program writes, parsed and checked for least privilege."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import StackConfig
from infra.iam import (
    LOAD_BALANCER_READ_ACTIONS,
    TAG_SCOPED_KEYS,
    UNSCOPED_READ_ACTIONS,
    check_least_privilege,
)
from tests.infra.support import as_list, by_name, document
from tools.plan.mocks import ACCOUNT_ID
from tools.plan.offline import OfflineRun, RecordedResource

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
# AWS-managed policies the program may attach, and to which roles (by name suffix).
ALLOWED_MANAGED = {
    "-cluster": {"AmazonEKSClusterPolicy"},
    "-nodes": {"AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly"},
    "-vpc-cni": {"AmazonEKS_CNI_Policy"},
    "-ebs-csi": {"AmazonEBSCSIDriverPolicy"},
}


def _role_policy(run: OfflineRun, role: RecordedResource) -> dict[str, Any]:
    (policy,) = [p for p in run.of_type(ROLE_POLICY) if p.inputs["role"] == role.id]
    return document(policy, "policy")


def _statement(doc: dict[str, Any], sid: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [s for s in doc["Statement"] if s["Sid"] == sid]
    assert len(found) == 1, sid
    return found[0]


def test_no_identity_policy_grants_a_wildcard(run: OfflineRun) -> None:
    policies = run.of_type(ROLE_POLICY)
    assert policies
    for policy in policies:
        for statement in document(policy, "policy")["Statement"]:
            assert statement["Effect"] == "Allow"
            assert "NotAction" not in statement
            assert "NotResource" not in statement
            for action in as_list(statement["Action"]):
                assert action != "*", policy.name
                assert not action.endswith(":*"), (policy.name, action)
            if as_list(statement["Resource"]) == ["*"]:
                # Only reads IAM cannot scope to a resource, or writes scoped by the tag the
                # load balancer controller puts on what it creates.
                actions = set(as_list(statement["Action"]))
                if actions <= UNSCOPED_READ_ACTIONS | LOAD_BALANCER_READ_ACTIONS:
                    continue
                assert policy.name.endswith("-load-balancer-controller"), policy.name
                required = statement["Condition"]["Null"]
                assert [key.split("/", 1)[1] for key in required] == sorted(TAG_SCOPED_KEYS)
                assert set(required.values()) == {"false"}
                continue
            for resource in as_list(statement["Resource"]):
                assert resource != "*", (policy.name, statement["Sid"])
                assert resource.startswith("arn:aws:"), (policy.name, resource)


def test_only_expected_managed_policies_are_attached(run: OfflineRun) -> None:
    roles = {r.outputs["name"]: r for r in run.of_type(ROLE)}
    for attachment in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        role = roles[attachment.inputs["role"]]
        policy = attachment.inputs["policyArn"].rsplit("/", 1)[1]
        allowed = next(
            names for suffix, names in ALLOWED_MANAGED.items() if role.name.endswith(suffix)
        )
        assert policy in allowed, (role.name, policy)
    assert not run.of_type("aws:iam/policy:Policy")
    assert not run.of_type("aws:iam/user:User")


def test_every_trust_policy_names_its_principal(run: OfflineRun) -> None:
    for role in run.of_type(ROLE):
        for statement in document(role, "assumeRolePolicy")["Statement"]:
            principal = statement["Principal"]
            assert principal != "*", role.name
            if role.name.endswith("-dr-restore"):
                # The one human-assumed role: from the break-glass role only, with MFA.
                assert principal == {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:role/backup-break-glass"}
                assert statement["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
                continue
            if role.name == "backup-break-glass":
                # Humans of this account (its admins, when no principals are listed), with MFA.
                assert principal == {"AWS": [f"arn:aws:iam::{ACCOUNT_ID}:root"]}
                assert statement["Condition"]["Bool"] == {"aws:MultiFactorAuthPresent": "true"}
                continue
            assert "AWS" not in principal, role.name
            if "Service" in principal:
                assert statement["Action"] == "sts:AssumeRole"
                if principal["Service"] != "ec2.amazonaws.com":
                    # Only on behalf of this account (no confused deputy).
                    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"]
            else:
                assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"


def test_irsa_roles_trust_one_service_account_each(run: OfflineRun, config: StackConfig) -> None:
    oidc = run.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    host = oidc.inputs["url"].removeprefix("https://")
    roles = by_name(run, ROLE)
    namespace = config.release.namespace
    expected = {
        f"{config.name}-service": (
            f"system:serviceaccount:{namespace}:{config.release.service_account}"
        ),
        f"{config.name}-backup": (
            f"system:serviceaccount:{namespace}:{config.release.backup_service_account}"
        ),
        f"{config.name}-vpc-cni": "system:serviceaccount:kube-system:aws-node",
        f"{config.name}-ebs-csi": "system:serviceaccount:kube-system:ebs-csi-controller-sa",
    }
    for name, subject in expected.items():
        (statement,) = document(roles[name], "assumeRolePolicy")["Statement"]
        assert statement["Principal"] == {"Federated": oidc.outputs["arn"]}
        assert statement["Condition"] == {
            "StringEquals": {f"{host}:sub": subject, f"{host}:aud": "sts.amazonaws.com"}
        }


def test_service_role_reads_only_its_own_secrets(run: OfflineRun, config: StackConfig) -> None:
    role = by_name(run, ROLE)[f"{config.name}-service"]
    policy = _role_policy(run, role)
    db = by_name(run, "aws:rds/instance:Instance")[f"{config.name}-db"]
    secrets = by_name(run, "aws:secretsmanager/secret:Secret")
    # External Secrets syncs the workloads' own database logins, the Redis user and the
    # service's keys through this role; never the RDS master secret.
    own = {
        *(
            secrets[f"{config.name}-db-{workload}"].outputs["arn"]
            for workload in ("migrator", "app", "backup", "retention")
        ),
        secrets[f"{config.name}-cache-app-user"].outputs["arn"],
        secrets[f"{config.name}-service-secret"].outputs["arn"],
    }
    read = _statement(policy, "ReadOwnSecrets")
    assert db.outputs["masterUserSecrets"][0]["secretArn"] not in as_list(read["Resource"])
    assert sorted(as_list(read["Action"])) == [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
    ]
    assert set(as_list(read["Resource"])) == own

    decrypt = _statement(policy, "DecryptOwnSecrets")
    assert as_list(decrypt["Action"]) == ["kms:Decrypt"]
    keys = by_name(run, "aws:kms/key:Key")
    assert set(as_list(decrypt["Resource"])) == {
        keys[f"{config.name}-db"].outputs["arn"],
        keys[f"{config.name}-cache"].outputs["arn"],
        keys[f"{config.name}-service-secret"].outputs["arn"],
    }
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}
    }
    assert len(policy["Statement"]) == 2


def test_backup_role_is_confined_to_its_prefix(run: OfflineRun, config: StackConfig) -> None:
    role = by_name(run, ROLE)[f"{config.name}-backup"]
    policy = _role_policy(run, role)
    bucket = by_name(run, "aws:s3/bucket:Bucket")[f"{config.name}-backups"]
    arn, prefix = bucket.outputs["arn"], config.backups.prefix

    listing = _statement(policy, "ListOwnPrefix")
    assert as_list(listing["Action"]) == ["s3:ListBucket"]
    assert as_list(listing["Resource"]) == [arn]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}}

    objects = _statement(policy, "ReadWriteOwnPrefix")
    assert sorted(as_list(objects["Action"])) == [
        "s3:AbortMultipartUpload",
        "s3:GetObject",
        "s3:ListMultipartUploadParts",
        "s3:PutObject",
    ]
    assert as_list(objects["Resource"]) == [f"{arn}/{prefix}*"]

    key = _statement(policy, "UseBucketKey")
    keys = by_name(run, "aws:kms/key:Key")
    assert as_list(key["Resource"]) == [keys[f"{config.name}-backups"].outputs["arn"]]
    assert sorted(as_list(key["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert key["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}
    # Nothing else: no delete, no other bucket, no secrets.
    assert len(policy["Statement"]) == 3


def test_key_policies_spell_out_their_actions(run: OfflineRun) -> None:
    keys = run.of_type("aws:kms/key:Key")
    assert keys
    for key in keys:
        for statement in document(key, "policy")["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = as_list(statement["Action"])
            assert "kms:*" not in actions, key.name
            assert "*" not in actions, key.name
            principal = statement["Principal"]
            if "AWS" in principal:
                assert principal["AWS"] == f"arn:aws:iam::{ACCOUNT_ID}:root"
            else:
                # A service uses the key only for the resources named in its condition.
                assert principal["Service"].startswith("logs.")
                assert statement["Condition"]
        assert key.inputs["enableKeyRotation"] is True


@pytest.mark.parametrize(
    "statement",
    [
        {"Sid": "A", "Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"},
        {"Sid": "B", "Effect": "Allow", "Action": ["s3:*"], "Resource": "arn:aws:s3:::b"},
        {"Sid": "C", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {"Sid": "D", "Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"},
        # The tag exception is narrow: a tag that merely must be absent does not scope...
        {
            "Sid": "E",
            "Effect": "Allow",
            "Action": "elasticloadbalancing:DeleteLoadBalancer",
            "Resource": "*",
            "Condition": {"Null": {"aws:ResourceTag/elbv2.k8s.aws/cluster": "true"}},
        },
        # ...nor does the presence of any other tag.
        {
            "Sid": "F",
            "Effect": "Allow",
            "Action": "ec2:DeleteSecurityGroup",
            "Resource": "*",
            "Condition": {"Null": {"aws:ResourceTag/team": "false"}},
        },
        # A controller's write outside the read list without a condition.
        {"Sid": "G", "Effect": "Allow", "Action": "ec2:CreateSecurityGroup", "Resource": "*"},
    ],
)
def test_the_builder_refuses_wildcards(statement: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=f"statement {statement['Sid']}"):
        check_least_privilege({"Statement": [statement]})


def test_the_builder_lets_a_controller_tag_scope_its_writes() -> None:
    """The AWS Load Balancer Controller's published policy scopes writes on the ELBs and
    security groups it creates by their elbv2.k8s.aws/cluster tag (ARNs unknown before)."""
    for side in ("RequestTag", "ResourceTag"):
        scoped = {
            "Sid": "T",
            "Effect": "Allow",
            "Action": ["elasticloadbalancing:CreateLoadBalancer"],
            "Resource": "*",
            "Condition": {"Null": {f"aws:{side}/elbv2.k8s.aws/cluster": "false"}},
        }
        check_least_privilege({"Statement": [scoped]})


def test_the_builder_lets_deny_statements_be_broad() -> None:
    deny = {"Sid": "D", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}
    check_least_privilege({"Statement": [deny]})
