"""EKS per stack: an endpoint the deployer reaches, KMS secrets, logging, the deployer's access
entry, pinned add-ons with NetworkPolicy enforcement, the workload security group, OIDC and
the cluster autoscaler's role."""

from __future__ import annotations

import json

import pytest

from infra.cluster import CONTROL_PLANE_LOGS, admin_entry_name
from infra.config import StackConfig
from tests.infra.support import by_name, document
from tools.kit.chart import KUBERNETES_VERSION
from tools.plan import mocks
from tools.plan.mocks import ACCOUNT_ID, ADDON_VERSIONS, DEPLOYER_ROLE
from tools.plan.offline import OfflineRun, run_offline, stack_config_values

CLUSTER = "aws:eks/cluster:Cluster"


def test_api_endpoint_is_private_and_open_to_the_in_vpc_runner(
    run: OfflineRun, config: StackConfig
) -> None:
    vpc = run.one(CLUSTER).inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is False
    assert config.cluster.endpoint_access.mode == "inVpc"
    assert "publicAccessCidrs" not in vpc
    private = {s.id for s in run.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name}
    assert set(vpc["subnetIds"]) == private
    # The runner in the private subnets reaches the API on 443 through the cluster group.
    group = run.one(CLUSTER).outputs["vpcConfig"]["clusterSecurityGroupId"]
    rules = run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    private_cidrs = {s.inputs["cidrBlock"] for s in run.of_type("aws:ec2/subnet:Subnet")}
    assert {r.inputs["cidrIpv4"] for r in rules} < private_cidrs
    for rule in rules:
        assert rule.inputs["securityGroupId"] == group
        assert (rule.inputs["fromPort"], rule.inputs["toPort"]) == (443, 443)


def test_public_mode_opens_the_endpoint_to_the_listed_cidrs_only() -> None:
    values, _ = stack_config_values("dev")
    cluster = json.loads(values["agent-platform:cluster"])
    cluster["endpointAccess"] = {"mode": "publicCidrs", "publicCidrs": ["198.51.100.7/32"]}
    run = run_offline("dev", config={**values, "agent-platform:cluster": json.dumps(cluster)})
    vpc = run.one(CLUSTER).inputs["vpcConfig"]
    assert vpc["endpointPublicAccess"] is True
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["publicAccessCidrs"] == ["198.51.100.7/32"]
    assert not run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")


def test_the_version_upgrades_at_the_end_of_standard_support(run: OfflineRun) -> None:
    cluster = run.one(CLUSTER).inputs
    assert cluster["version"] == "1.36"
    assert cluster["upgradePolicy"] == {"supportType": "STANDARD"}
    # The chart's fixtures are validated against the schemas of the version the stacks run.
    assert f"{cluster['version']}.0" == KUBERNETES_VERSION


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


def test_the_deployer_is_the_first_admin_access_entry(run: OfflineRun, config: StackConfig) -> None:
    access = run.one(CLUSTER).inputs["accessConfig"]
    assert access["authenticationMode"] == "API"
    assert access["bootstrapClusterCreatorAdminPermissions"] is False
    entries = run.of_type("aws:eks/accessEntry:AccessEntry")
    # The role behind the STS session that runs `pulumi up`, not the session itself.
    assert (
        by_name(run, "aws:eks/accessEntry:AccessEntry")[
            admin_entry_name(f"agent-{config.environment}", DEPLOYER_ROLE)
        ].inputs["principalArn"]
        == DEPLOYER_ROLE
    )
    assert sorted(e.inputs["principalArn"] for e in entries) == sorted(
        {DEPLOYER_ROLE, *config.cluster.admin_role_arns}
    )
    for entry in entries:
        assert entry.inputs["principalArn"].split(":")[4] == ACCOUNT_ID
    associations = run.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert sorted(a.inputs["principalArn"] for a in associations) == sorted(
        e.inputs["principalArn"] for e in entries
    )
    for association in associations:
        assert association.inputs["policyArn"].endswith("/AmazonEKSClusterAdminPolicy")
        assert association.inputs["accessScope"] == {"type": "cluster"}
    assert not run.of_type("kubernetes:core/v1:ConfigMap")


def test_configured_admins_follow_the_deployer_once() -> None:
    values, _ = stack_config_values("dev")
    cluster = json.loads(values["agent-platform:cluster"])
    other = f"arn:aws:iam::{ACCOUNT_ID}:role/oncall"
    cluster["adminRoleArns"] = [other, DEPLOYER_ROLE]
    run = run_offline("dev", config={**values, "agent-platform:cluster": json.dumps(cluster)})
    entries = {
        e.name: e.inputs["principalArn"] for e in run.of_type("aws:eks/accessEntry:AccessEntry")
    }
    assert entries == {
        admin_entry_name("agent-dev", DEPLOYER_ROLE): DEPLOYER_ROLE,
        admin_entry_name("agent-dev", other): other,
    }


def _admin_entries(values: dict[str, str]) -> dict[str, str]:
    run = run_offline("dev", config=values)
    return {
        e.name: e.inputs["principalArn"] for e in run.of_type("aws:eks/accessEntry:AccessEntry")
    }


def test_another_deployer_keeps_every_listed_admins_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each entry is named by its principal: when someone else deploys, the listed admins'
    entries keep their names (no replacement, which EKS refuses while the old entry holds the
    principal), and a deployer who is also listed gets one entry, not two."""
    values, _ = stack_config_values("dev")
    cluster = json.loads(values["agent-platform:cluster"])
    oncall = f"arn:aws:iam::{ACCOUNT_ID}:role/oncall"
    second = f"arn:aws:iam::{ACCOUNT_ID}:role/platform/second-deployer"
    cluster["adminRoleArns"] = [oncall, second]
    values = {**values, "agent-platform:cluster": json.dumps(cluster)}
    first_run = _admin_entries(values)
    monkeypatch.setattr(mocks, "DEPLOYER_ROLE", second)
    second_run = _admin_entries(values)
    for listed in (oncall, second):
        name = admin_entry_name("agent-dev", listed)
        assert first_run[name] == listed
        assert second_run[name] == listed
    assert sorted(second_run.values()) == sorted({oncall, second})
    assert len(first_run) == 3


def test_an_admin_of_another_account_stops_the_program() -> None:
    values, _ = stack_config_values("dev")
    cluster = json.loads(values["agent-platform:cluster"])
    cluster["adminRoleArns"] = ["arn:aws:iam::210987654321:role/admin"]
    with pytest.raises(Exception, match=r"cluster.adminRoleArns .* not in the account"):
        run_offline("dev", config={**values, "agent-platform:cluster": json.dumps(cluster)})


def test_core_addons_are_managed(run: OfflineRun) -> None:
    addons = {a.inputs["addonName"]: a for a in run.of_type("aws:eks/addon:Addon")}
    assert set(addons) == {"vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver"}
    for name, addon in addons.items():
        # Pinned: EKS's default build for the cluster's version, not "whatever is latest".
        assert addon.inputs["addonVersion"] == ADDON_VERSIONS[name]
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


def test_the_cni_enforces_network_policies(run: OfflineRun) -> None:
    (cni,) = [a for a in run.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "vpc-cni"]
    assert json.loads(cni.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}


def test_nodes_carry_the_cluster_and_the_workload_group(run: OfflineRun, stack: str) -> None:
    groups = by_name(run, "aws:ec2/securityGroup:SecurityGroup")
    workload = groups[f"agent-{stack}-workloads"]
    cluster_group = run.one(CLUSTER).outputs["vpcConfig"]["clusterSecurityGroupId"]
    template = run.one("aws:ec2/launchTemplate:LaunchTemplate")
    assert template.inputs["vpcSecurityGroupIds"] == [cluster_group, workload.id]
    # The data stores admit the workload group (and the database its credential rotation
    # function): not the cluster group, which also holds the control plane's interfaces.
    rotation = groups[f"agent-{stack}-db-rotation"].id
    for store, sources in (("db", [[workload.id], [rotation]]), ("cache", [[workload.id]])):
        rules = groups[f"agent-{stack}-{store}"].inputs["ingress"]
        assert [rule["securityGroups"] for rule in rules] == sources
        assert all(cluster_group not in rule["securityGroups"] for rule in rules)


def test_the_autoscaler_resizes_only_this_clusters_node_groups(run: OfflineRun, stack: str) -> None:
    roles = by_name(run, "aws:iam/role:Role")
    role = roles[f"agent-{stack}-cluster-autoscaler"]
    trust = document(role, "assumeRolePolicy")
    (condition,) = [s["Condition"]["StringEquals"] for s in trust["Statement"]]
    assert "system:serviceaccount:kube-system:cluster-autoscaler" in condition.values()
    policy = by_name(run, "aws:iam/rolePolicy:RolePolicy")[f"agent-{stack}-cluster-autoscaler"]
    statements = {s["Sid"]: s for s in document(policy, "policy")["Statement"]}
    resize = statements["ResizeOwnNodeGroups"]
    assert resize["Resource"] == [
        f"arn:aws:autoscaling:eu-west-1:{ACCOUNT_ID}:autoScalingGroup:*:"
        f"autoScalingGroupName/eks-agent-{stack}-*"
    ]
    assert resize["Condition"]["StringEquals"] == {
        f"aws:ResourceTag/k8s.io/cluster-autoscaler/agent-{stack}": "owned"
    }
    assert all(
        a.startswith(("autoscaling:Describe", "ec2:"))
        for a in statements["DiscoverNodeGroups"]["Action"]
    )


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
