"""EKS per stack: private endpoint, KMS secrets, logging, access entries, add-ons, OIDC."""

from __future__ import annotations

import json

from infra.cluster import CONTROL_PLANE_LOGS
from infra.config import StackConfig
from tests.infra.support import by_name, document
from tools.plan.offline import OfflineRun

CLUSTER = "aws:eks/cluster:Cluster"


def test_api_endpoint_is_private(run: OfflineRun, config: StackConfig) -> None:
    vpc = run.one(CLUSTER).inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is False
    assert config.cluster.public_access_cidrs == []
    assert "publicAccessCidrs" not in vpc
    private = {s.id for s in run.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name}
    assert set(vpc["subnetIds"]) == private


def test_secrets_are_envelope_encrypted_with_a_rotated_key(run: OfflineRun) -> None:
    (encryption,) = [run.one(CLUSTER).inputs["encryptionConfig"]]
    assert encryption["resources"] == ["secrets"]
    keys = {k.outputs["arn"]: k for k in run.of_type("aws:kms/key:Key")}
    key = keys[encryption["provider"]["keyArn"]]
    assert key.inputs["enableKeyRotation"] is True
    assert key.name.endswith("-eks-secrets")


def test_every_control_plane_log_goes_to_an_encrypted_group(
    run: OfflineRun, config: StackConfig
) -> None:
    cluster = run.one(CLUSTER)
    assert sorted(cluster.inputs["enabledClusterLogTypes"]) == sorted(CONTROL_PLANE_LOGS)
    name = cluster.inputs["name"]
    group = next(
        g
        for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")
        if g.inputs["name"] == f"/aws/eks/{name}/cluster"
    )
    assert group.inputs["retentionInDays"] == config.cluster.log_retention_days
    assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:")
    assert group.urn in cluster.depends_on


def test_access_entries_not_the_aws_auth_configmap(run: OfflineRun, config: StackConfig) -> None:
    access = run.one(CLUSTER).inputs["accessConfig"]
    assert access["authenticationMode"] == "API"
    assert access["bootstrapClusterCreatorAdminPermissions"] is False
    entries = run.of_type("aws:eks/accessEntry:AccessEntry")
    assert sorted(e.inputs["principalArn"] for e in entries) == sorted(
        config.cluster.admin_role_arns
    )
    for association in run.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation"):
        assert association.inputs["policyArn"].endswith("/AmazonEKSClusterAdminPolicy")
        assert association.inputs["accessScope"] == {"type": "cluster"}
    assert not run.of_type("kubernetes:core/v1:ConfigMap")


def test_core_addons_are_managed(run: OfflineRun) -> None:
    addons = {a.inputs["addonName"]: a for a in run.of_type("aws:eks/addon:Addon")}
    assert set(addons) == {"vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver"}
    for addon in addons.values():
        assert addon.inputs["resolveConflictsOnCreate"] == "OVERWRITE"
        assert addon.inputs["resolveConflictsOnUpdate"] == "PRESERVE"
    roles = {r.outputs["arn"]: r for r in run.of_type("aws:iam/role:Role")}
    # The CNI and the EBS driver get their own IRSA roles instead of the node role.
    for name, account in (("vpc-cni", "aws-node"), ("aws-ebs-csi-driver", "ebs-csi-controller-sa")):
        trust = document(roles[addons[name].inputs["serviceAccountRoleArn"]], "assumeRolePolicy")
        (condition,) = [s["Condition"]["StringEquals"] for s in trust["Statement"]]
        assert f"system:serviceaccount:kube-system:{account}" in condition.values()
    # CoreDNS needs nodes to schedule on: it waits for the node groups.
    node_groups = {g.urn for g in run.of_type("aws:eks/nodeGroup:NodeGroup")}
    assert node_groups <= set(addons["coredns"].depends_on)


def test_oidc_provider_trusts_sts_for_the_cluster_issuer(run: OfflineRun) -> None:
    cluster = run.one(CLUSTER)
    provider = run.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    issuer = cluster.outputs["identities"][0]["oidcs"][0]["issuer"]
    assert provider.inputs["url"] == issuer
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]


def test_node_groups_sized_from_config(run: OfflineRun, config: StackConfig) -> None:
    groups = run.of_type("aws:eks/nodeGroup:NodeGroup")
    assert len(groups) == len(config.cluster.node_groups)
    private = {s.id for s in run.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name}
    for group, wanted in zip(groups, config.cluster.node_groups, strict=True):
        scaling = group.inputs["scalingConfig"]
        assert (scaling["minSize"], scaling["desiredSize"], scaling["maxSize"]) == (
            wanted.min_size,
            wanted.desired_size,
            wanted.max_size,
        )
        assert group.inputs["instanceTypes"] == wanted.instance_types
        assert set(group.inputs["subnetIds"]) == private
        assert "scalingConfig.desiredSize" in group.ignore_changes


def test_nodes_require_imdsv2_and_encrypt_their_disks(run: OfflineRun) -> None:
    template = run.one("aws:ec2/launchTemplate:LaunchTemplate")
    metadata = template.inputs["metadataOptions"]
    assert metadata["httpTokens"] == "required"
    assert metadata["httpPutResponseHopLimit"] == 1
    (disk,) = template.inputs["blockDeviceMappings"]
    assert disk["ebs"]["encrypted"] == "true"


def test_node_role_holds_no_network_permissions(run: OfflineRun, stack: str) -> None:
    node_role = by_name(run, "aws:iam/role:Role")[f"agent-{stack}-nodes"]
    attached = [
        a.inputs["policyArn"]
        for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == node_role.outputs["name"]
    ]
    assert sorted(arn.rsplit("/", 1)[1] for arn in attached) == [
        "AmazonEC2ContainerRegistryPullOnly",
        "AmazonEKSWorkerNodePolicy",
    ]


def test_deletion_protection_only_in_prod(run: OfflineRun, stack: str) -> None:
    assert run.one(CLUSTER).inputs["deletionProtection"] is (stack == "prod")


def test_kubeconfig_authenticates_through_aws_not_a_static_token(run: OfflineRun) -> None:
    kubeconfig = json.loads(run.outputs["kubeconfig"])
    cluster = run.one(CLUSTER)
    assert kubeconfig["clusters"][0]["cluster"]["server"] == cluster.outputs["endpoint"]
    (user,) = kubeconfig["users"]
    assert user["user"]["exec"]["command"] == "aws"
    assert "token" not in user["user"]
    assert "kubeconfig" in run.secret_outputs
