"""The rules a fresh account's first `pulumi up` taught (issue 15), each shown catching the
case that would have failed there and passing the corrected one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policies import ec2, eks, kms, kubernetes, lifecycle, rds
from tests.policies.support import check, check_stack, policy_resource, resource_args

ACCOUNT = "406812953771"
KEY_ARN = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/abc"
CLUSTER_GROUP = "sg-0cluster"
ON = {"supportCheckDate": "2026-11-30"}


def cluster_props(**changes: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "version": "1.35",
        "upgradePolicy": {"supportType": "STANDARD"},
        "vpcConfig": {
            "endpointPrivateAccess": True,
            "endpointPublicAccess": False,
            "clusterSecurityGroupId": CLUSTER_GROUP,
        },
        "accessConfig": {"bootstrapClusterCreatorAdminPermissions": False},
    }
    props.update(changes)
    return props


# --- B3: a read replica of a source whose password Secrets Manager manages -------------


def _instances(managed: bool) -> list[Any]:
    primary = policy_resource(
        rds.INSTANCE,
        "agent-prod-db",
        {"identifier": "agent-prod-db", "manageMasterUserPassword": managed},
    )
    replica = policy_resource(
        rds.INSTANCE,
        "agent-prod-db-replica",
        {"identifier": "agent-prod-db-replica", "replicateSourceDb": "agent-prod-db"},
        dependencies=[primary],
    )
    return [primary, replica]


def test_a_replica_of_a_managed_password_source_is_refused() -> None:
    (found,) = check_stack(rds.NO_REPLICA_OF_MANAGED_PASSWORD, _instances(managed=True))
    assert "'agent-prod-db-replica' replicates 'agent-prod-db'" in found.message
    assert "RDS refuses" in found.message
    assert found.urn is not None
    assert found.urn.endswith("::agent-prod-db-replica")


def test_a_replica_of_a_self_managed_source_and_no_replica_pass() -> None:
    assert check_stack(rds.NO_REPLICA_OF_MANAGED_PASSWORD, _instances(managed=False)) == []
    primary = _instances(managed=True)[0]
    assert check_stack(rds.NO_REPLICA_OF_MANAGED_PASSWORD, [primary]) == []


# --- H3: the Kubernetes version inside standard support ----------------------------------


def _version_problems(props: dict[str, Any], config: dict[str, Any] = ON) -> list[str]:
    return check(eks.STANDARD_SUPPORT_VERSION, resource_args(eks.CLUSTER, props, config=config))


def test_a_version_in_standard_support_with_the_standard_policy_passes() -> None:
    assert _version_problems(cluster_props()) == []


def test_a_version_in_extended_support_is_refused() -> None:
    (problem,) = _version_problems(cluster_props(version="1.33"))
    assert "Kubernetes 1.33" in problem
    assert "ended on 2026-07-29" in problem
    assert "(1.34, 1.35, 1.36)" in problem


def test_the_newest_eks_version_is_dated_and_accepted() -> None:
    """1.36, released on EKS in June 2026, is in standard support until 2027-08-02."""
    assert _version_problems(cluster_props(version="1.36")) == []


def test_a_version_about_to_leave_standard_support_is_refused() -> None:
    # 1.34 ends on 2026-12-02: two days away, inside the 30-day margin.
    (problem,) = _version_problems(cluster_props(version="1.34"))
    assert "ends on 2026-12-02" in problem
    assert (
        _version_problems(cluster_props(version="1.34"), {**ON, "minStandardSupportDays": 0}) == []
    )


def test_an_undated_version_or_no_version_is_refused() -> None:
    (undated,) = _version_problems(cluster_props(version="1.29"))
    assert "does not date" in undated
    props = cluster_props()
    del props["version"]
    (unset,) = _version_problems(props)
    assert "leaves its Kubernetes version to EKS's default" in unset


def test_extended_support_as_the_upgrade_policy_is_refused() -> None:
    (problem,) = _version_problems(cluster_props(upgradePolicy={"supportType": "EXTENDED"}))
    assert "support_type EXTENDED" in problem
    props = cluster_props()
    del props["upgradePolicy"]
    assert "unset (EXTENDED)" in _version_problems(props)[0]


def test_a_malformed_check_date_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="supportCheckDate"):
        _version_problems(cluster_props(), {"supportCheckDate": "30/11/2026"})


# --- H1: NetworkPolicies the CNI enforces -----------------------------------------------


def _release(network_policy: bool) -> Any:
    return policy_resource(
        kubernetes.RELEASE,
        "agent-prod-service",
        {
            "chart": "/repo/charts/langgraph-agent",
            "values": {"networkPolicy": {"enabled": network_policy}},
        },
    )


def _cni(configuration: dict[str, str] | None) -> Any:
    props: dict[str, Any] = {"addonName": "vpc-cni"}
    if configuration is not None:
        props["configurationValues"] = json.dumps(configuration)
    return policy_resource(eks.ADDON, "agent-prod-vpc-cni", props)


def test_network_policies_without_the_cni_agent_are_refused() -> None:
    for cni in (_cni(None), _cni({"enableNetworkPolicy": "false"})):
        (found,) = check_stack(eks.NETWORK_POLICY_ENFORCED, [_release(True), cni])
        assert "renders NetworkPolicies" in found.message
        assert "enforce none" in found.message


def test_network_policies_with_the_cni_agent_pass() -> None:
    cni = _cni({"enableNetworkPolicy": "true"})
    assert check_stack(eks.NETWORK_POLICY_ENFORCED, [_release(True), cni]) == []
    # No NetworkPolicy rendered, nothing to enforce.
    assert check_stack(eks.NETWORK_POLICY_ENFORCED, [_release(False), _cni(None)]) == []


# --- B1: the deployer reaches the API server ---------------------------------------------


def _runner_rule(cluster: Any, port: int = 443, group: str = CLUSTER_GROUP) -> Any:
    return policy_resource(
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "agent-prod-api-from-runner-0",
        {
            "securityGroupId": group,
            "ipProtocol": "tcp",
            "fromPort": port,
            "toPort": port,
            "cidrIpv4": "10.30.0.0/18",
        },
        dependencies=[cluster] if group == CLUSTER_GROUP else [],
    )


def test_a_private_only_endpoint_nobody_is_admitted_to_is_refused() -> None:
    cluster = policy_resource(eks.CLUSTER, "agent-prod-eks", cluster_props())
    (found,) = check_stack(eks.ENDPOINT_REACHABLE, [cluster])
    assert "private endpoint only" in found.message
    # A rule for another port, or on another group, admits no deployer either.
    assert check_stack(eks.ENDPOINT_REACHABLE, [cluster, _runner_rule(cluster, port=5432)])
    assert check_stack(eks.ENDPOINT_REACHABLE, [cluster, _runner_rule(cluster, group="sg-other")])


def test_an_in_vpc_runner_rule_or_listed_public_cidrs_pass() -> None:
    cluster = policy_resource(eks.CLUSTER, "agent-prod-eks", cluster_props())
    assert check_stack(eks.ENDPOINT_REACHABLE, [cluster, _runner_rule(cluster)]) == []
    public = cluster_props(
        vpcConfig={
            "endpointPrivateAccess": True,
            "endpointPublicAccess": True,
            "publicAccessCidrs": ["198.51.100.7/32"],
        }
    )
    assert check_stack(eks.ENDPOINT_REACHABLE, [policy_resource(eks.CLUSTER, "c", public)]) == []


# --- B2: admin access entries of real principals -----------------------------------------


def _key() -> Any:
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": ["kms:Decrypt"],
            }
        ]
    }
    return policy_resource(
        eks.KMS_KEY, "agent-prod-db", {"policy": json.dumps(policy), "arn": KEY_ARN}
    )


def _admin(principal: str) -> list[Any]:
    entry = policy_resource(eks.ACCESS_ENTRY, "agent-prod-admin-0", {"principalArn": principal})
    association = policy_resource(
        eks.ACCESS_POLICY_ASSOCIATION,
        "agent-prod-admin-0",
        {
            "principalArn": principal,
            "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
        },
    )
    return [entry, association]


def _cluster() -> Any:
    return policy_resource(eks.CLUSTER, "agent-prod-eks", cluster_props())


def test_a_documentation_account_admin_is_refused() -> None:
    found = check_stack(
        eks.ADMIN_ENTRIES,
        [_key(), _cluster(), *_admin("arn:aws:iam::111122223333:role/platform-admin")],
    )
    assert len(found) == 2  # the entry and its policy association
    assert "documentation account 111122223333" in found[0].message


def test_an_admin_of_another_account_is_refused() -> None:
    found = check_stack(
        eks.ADMIN_ENTRIES, [_key(), _cluster(), *_admin("arn:aws:iam::210987654321:role/admin")]
    )
    assert found
    assert f"outside the deploying account ({ACCOUNT})" in found[0].message


def test_a_cluster_without_any_admin_is_refused() -> None:
    (found,) = check_stack(eks.ADMIN_ENTRIES, [_key(), _cluster()])
    assert "locked out" in found.message


def test_the_deployers_own_role_passes() -> None:
    admin = _admin(f"arn:aws:iam::{ACCOUNT}:role/platform/deployer")
    assert check_stack(eks.ADMIN_ENTRIES, [_key(), _cluster(), *admin]) == []


# --- B5: the release image by digest -------------------------------------------------------


def _service(image: dict[str, Any], stack: str) -> Any:
    return resource_args(
        kubernetes.RELEASE,
        {"chart": "charts/langgraph-agent", "values": {"image": image}},
        stack=stack,
    )


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_a_release_by_tag_is_refused_in_staging_and_prod(stack: str) -> None:
    (problem,) = check(kubernetes.IMAGE_BY_DIGEST, _service({"tag": "0.1.0"}, stack))
    assert "pulls its image by tag ('0.1.0')" in problem
    # Not a digest: a truncated one or another algorithm.
    assert check(
        kubernetes.IMAGE_BY_DIGEST, _service({"tag": "0.1.0", "digest": "sha256:ab"}, stack)
    )


def test_a_release_by_digest_passes_and_dev_may_use_a_tag() -> None:
    digest = "sha256:" + "ab" * 32
    assert (
        check(kubernetes.IMAGE_BY_DIGEST, _service({"tag": "0.1.0", "digest": digest}, "prod"))
        == []
    )
    assert check(kubernetes.IMAGE_BY_DIGEST, _service({"tag": "0.1.0"}, "dev")) == []


# --- L2: protect on stateful resources ------------------------------------------------------


@pytest.mark.parametrize("type_", sorted(lifecycle.STATEFUL_TYPES))
def test_unprotected_data_is_refused_in_prod_and_staging(type_: str) -> None:
    for stack in ("prod", "staging"):
        (problem,) = check(lifecycle.STATEFUL_PROTECTED, resource_args(type_, {}, stack=stack))
        assert "is not protected" in problem
        args = resource_args(type_, {}, stack=stack, protect=True)
        assert check(lifecycle.STATEFUL_PROTECTED, args) == []
    assert check(lifecycle.STATEFUL_PROTECTED, resource_args(type_, {}, stack="dev")) == []


# --- KMS rotation and IMDSv2 -----------------------------------------------------------------


def test_a_key_without_rotation_is_refused() -> None:
    (problem,) = check(kms.KEY_ROTATION, resource_args(kms.KEY, {"enableKeyRotation": False}))
    assert "enable_key_rotation=True" in problem
    assert check(kms.KEY_ROTATION, resource_args(kms.KEY, {})) != []
    assert check(kms.KEY_ROTATION, resource_args(kms.KEY, {"enableKeyRotation": True})) == []
    # Asymmetric keys cannot rotate automatically.
    signing = {"customerMasterKeySpec": "ECC_NIST_P256"}
    assert check(kms.KEY_ROTATION, resource_args(kms.KEY, signing)) == []


@pytest.mark.parametrize("type_", [ec2.LAUNCH_TEMPLATE, ec2.INSTANCE])
def test_imdsv1_is_refused(type_: str) -> None:
    for options in ({}, {"httpTokens": "optional"}):
        (problem,) = check(ec2.IMDSV2_REQUIRED, resource_args(type_, {"metadataOptions": options}))
        assert 'http_tokens="required"' in problem
    required = {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1}}
    assert check(ec2.IMDSV2_REQUIRED, resource_args(type_, required)) == []
    disabled = {"metadataOptions": {"httpEndpoint": "disabled"}}
    assert check(ec2.IMDSV2_REQUIRED, resource_args(type_, disabled)) == []


def test_the_program_and_the_pack_know_the_same_documentation_accounts() -> None:
    """Kept twice (the pack imports nothing of the program); this keeps them one fact."""
    from infra.config import DOCUMENTATION_ACCOUNTS

    assert eks.DOCUMENTATION_ACCOUNTS == DOCUMENTATION_ACCOUNTS
