"""EKS: an API endpoint the deployer can reach (public only to listed CIDRs, or private with an
in-VPC runner), KMS-encrypted secrets, control-plane logs, an admin access entry for the
deploying principal, managed node groups in a workload security group, the core add-ons at
pinned versions (the VPC CNI enforcing NetworkPolicies), the OIDC provider behind IRSA and the
cluster autoscaler's role."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config import ClusterConfig
from infra.iam import (
    STS_AUDIENCE,
    UNSCOPED_READ_ACTIONS,
    Account,
    allow,
    ec2_trust_policy,
    irsa_trust_policy,
    policy_document,
    service_trust_policy,
)
from infra.kms import encryption_key, logs_grant
from infra.tags import Tags

CONTROL_PLANE_LOGS = ("api", "audit", "authenticator", "controllerManager", "scheduler")
HTTPS = 443
# The VPC CNI only enforces NetworkPolicies with its network policy agent turned on; without
# it the chart's policies are accepted and ignored
# (https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy.html).
VPC_CNI_CONFIGURATION = {"enableNetworkPolicy": "true"}
AUTOSCALER_NAMESPACE = "kube-system"
AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"
# The autoscaler's recommended policy, least-privilege reads first:
# https://github.com/kubernetes/autoscaler/blob/master/cluster-autoscaler/cloudprovider/aws/README.md
AUTOSCALER_READS = tuple(sorted(UNSCOPED_READ_ACTIONS))
CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"
# Add-ons that must run before nodes can become Ready, and those that need nodes to schedule.
NETWORK_ADDONS = ("vpc-cni", "kube-proxy")
WORKLOAD_ADDONS = ("coredns", "aws-ebs-csi-driver")


@dataclass(frozen=True)
class ClusterArgs:
    config: ClusterConfig
    vpc_id: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    private_subnet_cidrs: Sequence[str]
    # The IAM principal running `pulumi up` (a role, not its STS session): cluster admin.
    deployer_arn: str
    account: Account
    tags: Tags


def admin_entry_name(name: str, principal_arn: str) -> str:
    """An access entry's resource name, from its principal alone: the same principal keeps its
    entry whoever deploys and in whatever order the list is. Named by position, a different
    deployer shifted every entry, Pulumi replaced them (create before delete), and EKS refused
    the new one: "An IAM principal can't be included in more than one access entry"
    (ResourceInUseException; docs.aws.amazon.com/eks/latest/userguide/
    creating-access-entries.html)."""
    digest = hashlib.sha256(principal_arn.encode()).hexdigest()[:12]
    return f"{name}-admin-{digest}"


def admin_principals(deployer_arn: str, config: ClusterConfig) -> list[str]:
    """The deployer first, then the configured admins, each once."""
    return list(dict.fromkeys([deployer_arn, *config.admin_role_arns]))


def kubeconfig(name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (no static credential)."""
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "users": [
            {
                "name": name,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": [
                            "--region",
                            region,
                            "eks",
                            "get-token",
                            "--cluster-name",
                            name,
                            "--output",
                            "json",
                        ],
                    }
                },
            }
        ],
    }
    return json.dumps(document, sort_keys=True)


def _oidc_issuer(identities: Sequence[aws.eks.outputs.ClusterIdentity]) -> str:
    for identity in identities:
        for oidc in identity.oidcs or []:
            if oidc.issuer:
                return oidc.issuer
    raise pulumi.RunError("the EKS cluster reports no OIDC issuer; IRSA cannot be set up")


class Cluster(pulumi.ComponentResource):
    cluster_name: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-platform:cluster:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags, account, config = args.tags, args.account, args.config
        self._tags = tags
        log_group_name = f"/aws/eks/{name}/cluster"

        secrets_key = encryption_key(
            f"{name}-eks-secrets",
            description=f"Envelope encryption of Kubernetes secrets in {name}",
            account=account,
            tags=tags.named(f"{name}-eks-secrets"),
            parent=self,
        )
        logs_key = encryption_key(
            f"{name}-eks-logs",
            description=f"Control-plane logs of {name}",
            account=account,
            tags=tags.named(f"{name}-eks-logs"),
            parent=self,
            grants=[logs_grant(account, [log_group_name])],
        )
        # EKS writes to this exact group; creating it first sets retention and encryption.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            name=log_group_name,
            retention_in_days=config.log_retention_days,
            kms_key_id=logs_key.arn,
            tags=tags.named(f"{name}-control-plane"),
            opts=child,
        )

        cluster_role = aws.iam.Role(
            f"{name}-cluster",
            description=f"EKS control plane of {name}",
            assume_role_policy=service_trust_policy("eks.amazonaws.com", account),
            tags=tags.named(f"{name}-cluster"),
            opts=child,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy",
            role=cluster_role.name,
            policy_arn=account.managed_policy_arn("AmazonEKSClusterPolicy"),
            opts=child,
        )
        secrets_key_use = aws.iam.RolePolicy(
            f"{name}-cluster-secrets-key",
            role=cluster_role.id,
            policy=policy_document(
                [
                    allow(
                        "EnvelopeEncryptSecrets",
                        ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                        [secrets_key.arn],
                    )
                ]
            ),
            opts=child,
        )

        access = config.endpoint_access
        public_cidrs = list(access.public_cidrs)
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=name,
            version=config.version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=list(args.private_subnet_ids),
                endpoint_private_access=True,
                endpoint_public_access=bool(public_cidrs),
                public_access_cidrs=public_cidrs or None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=secrets_key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOGS),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                # The deployer's entry is declared below, so it is visible, diffable and
                # removable like every other (terraform-aws-eks does the same).
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            # At the end of standard support EKS upgrades the cluster instead of billing
            # extended support (https://docs.aws.amazon.com/eks/latest/userguide/
            # kubernetes-versions.html); the pack keeps the version inside that window.
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type="STANDARD"),
            # The add-ons are declared below as managed add-ons, versioned with the cluster.
            bootstrap_self_managed_addons=False,
            deletion_protection=config.deletion_protection,
            tags=tags.named(name),
            # The role must hold its permissions before EKS assumes it (terraform-aws-eks
            # orders the cluster after its policy attachments for this reason).
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[log_group, cluster_policy, secrets_key_use]
            ),
        )
        cluster_group = cluster.vpc_config.apply(lambda vpc: vpc.cluster_security_group_id or "")
        if access.mode == "inVpc":
            # The runner that installs the Kubernetes part reaches the private endpoint.
            for index, cidr in enumerate(access.runner_cidrs or args.private_subnet_cidrs):
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-api-from-runner-{index}",
                    security_group_id=cluster_group,
                    description="Kubernetes API from the in-VPC deploy runner",
                    ip_protocol="tcp",
                    from_port=HTTPS,
                    to_port=HTTPS,
                    cidr_ipv4=cidr,
                    tags=tags.named(f"{name}-api-from-runner-{index}"),
                    opts=child,
                )

        admin_entries = self._access_entries(
            name, cluster, admin_principals(args.deployer_arn, config), account
        )

        issuer = cluster.identities.apply(_oidc_issuer)
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer,
            client_id_lists=[STS_AUDIENCE],
            tags=tags.named(f"{name}-oidc"),
            opts=child,
        )

        cni_role, cni_policy = self._addon_role(
            name, "vpc-cni", "aws-node", "AmazonEKS_CNI_Policy", oidc, issuer, args
        )
        ebs_role, ebs_policy = self._addon_role(
            name,
            "ebs-csi",
            "ebs-csi-controller-sa",
            "service-role/AmazonEBSCSIDriverPolicy",
            oidc,
            issuer,
            args,
        )
        network_addons = [
            self._addon(
                name,
                cluster,
                addon,
                config,
                cni_role if addon == "vpc-cni" else None,
                # The CNI starts with its IRSA role able to assign addresses.
                [cni_policy] if addon == "vpc-cni" else [],
            )
            for addon in NETWORK_ADDONS
        ]
        # The nodes' own group: the database and the cache admit this group only, not the
        # cluster security group, which also holds the control plane's network interfaces.
        workload_group = aws.ec2.SecurityGroup(
            f"{name}-workloads",
            description=f"Nodes of {name}: the source the database and the cache admit",
            vpc_id=args.vpc_id,
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    description="Nodes reach anything; NetworkPolicies restrict the pods",
                    protocol="-1",
                    from_port=0,
                    to_port=0,
                    cidr_blocks=["0.0.0.0/0"],
                )
            ],
            tags=tags.named(f"{name}-workloads"),
            opts=child,
        )
        node_groups = self._node_groups(
            name, cluster, args, [cluster_group, workload_group.id], network_addons
        )
        workload_addons = [
            self._addon(
                name,
                cluster,
                addon,
                config,
                ebs_role if addon == "aws-ebs-csi-driver" else None,
                [*node_groups, ebs_policy] if addon == "aws-ebs-csi-driver" else node_groups,
            )
            for addon in WORKLOAD_ADDONS
        ]
        autoscaler_role, autoscaler_policy = self._autoscaler_role(name, oidc, issuer, args)

        self.cluster_name = cluster.name
        self.cluster_security_group_id = cluster_group
        self.workload_security_group_id = workload_group.id
        self.oidc_provider_arn = oidc.arn
        self.oidc_issuer = issuer
        self.secrets_key_arn = secrets_key.arn
        self.admin_entries = admin_entries
        self.node_groups = node_groups
        self.addons = [*network_addons, *workload_addons]
        self.autoscaler_role_arn = autoscaler_role.arn
        self.autoscaler_policy = autoscaler_policy
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.name, cluster.endpoint, cluster.certificate_authority.data
            ).apply(lambda parts: kubeconfig(parts[0], parts[1], parts[2] or "", account.region))
        )
        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "clusterSecurityGroupId": self.cluster_security_group_id,
                "workloadSecurityGroupId": self.workload_security_group_id,
                "oidcProviderArn": self.oidc_provider_arn,
                "kubeconfig": self.kubeconfig,
            }
        )

    def _access_entries(
        self,
        name: str,
        cluster: aws.eks.Cluster,
        admin_role_arns: Sequence[str],
        account: Account,
    ) -> list[aws.eks.AccessPolicyAssociation]:
        admin_policy = (
            f"arn:{account.partition}:eks::aws:cluster-access-policy/{CLUSTER_ADMIN_POLICY}"
        )
        associations = []
        for principal in admin_role_arns:
            entry_name = admin_entry_name(name, principal)
            entry = aws.eks.AccessEntry(
                entry_name,
                cluster_name=cluster.name,
                principal_arn=principal,
                type="STANDARD",
                tags=self._tags.named(entry_name),
                opts=pulumi.ResourceOptions(parent=self),
            )
            associations.append(
                aws.eks.AccessPolicyAssociation(
                    entry_name,
                    cluster_name=cluster.name,
                    principal_arn=principal,
                    policy_arn=admin_policy,
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[entry]),
                )
            )
        return associations

    def _addon_role(
        self,
        name: str,
        addon: str,
        service_account: str,
        managed_policy: str,
        oidc: aws.iam.OpenIdConnectProvider,
        issuer: pulumi.Output[str],
        args: ClusterArgs,
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicyAttachment]:
        role = aws.iam.Role(
            f"{name}-{addon}",
            description=f"IRSA role of the {addon} add-on in {name}",
            assume_role_policy=irsa_trust_policy(oidc.arn, issuer, "kube-system", service_account),
            tags=args.tags.named(f"{name}-{addon}"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-{addon}",
            role=role.name,
            policy_arn=args.account.managed_policy_arn(managed_policy),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return role, attachment

    def _autoscaler_role(
        self,
        name: str,
        oidc: aws.iam.OpenIdConnectProvider,
        issuer: pulumi.Output[str],
        args: ClusterArgs,
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """The cluster autoscaler may resize and shrink only this cluster's node groups:
        their auto scaling groups, which EKS names `eks-<node group>-<id>` and tags
        `k8s.io/cluster-autoscaler/<cluster>` (https://docs.aws.amazon.com/eks/latest/
        userguide/managed-node-groups.html)."""
        account = args.account
        role = aws.iam.Role(
            f"{name}-cluster-autoscaler",
            description=f"IRSA role of the cluster autoscaler in {name}",
            assume_role_policy=irsa_trust_policy(
                oidc.arn, issuer, AUTOSCALER_NAMESPACE, AUTOSCALER_SERVICE_ACCOUNT
            ),
            tags=args.tags.named(f"{name}-cluster-autoscaler"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        groups = (
            f"arn:{account.partition}:autoscaling:{account.region}:{account.account_id}:"
            f"autoScalingGroup:*:autoScalingGroupName/eks-{name}-*"
        )
        node_groups = (
            f"arn:{account.partition}:eks:{account.region}:{account.account_id}:nodegroup/{name}/*"
        )
        policy = aws.iam.RolePolicy(
            f"{name}-cluster-autoscaler",
            role=role.id,
            policy=policy_document(
                [
                    allow("DiscoverNodeGroups", AUTOSCALER_READS, ["*"]),
                    allow("DescribeOwnNodeGroups", ["eks:DescribeNodegroup"], [node_groups]),
                    allow(
                        "ResizeOwnNodeGroups",
                        [
                            "autoscaling:SetDesiredCapacity",
                            "autoscaling:TerminateInstanceInAutoScalingGroup",
                        ],
                        [groups],
                        {
                            "StringEquals": {
                                f"aws:ResourceTag/k8s.io/cluster-autoscaler/{name}": "owned"
                            }
                        },
                    ),
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return role, policy

    def _addon(
        self,
        name: str,
        cluster: aws.eks.Cluster,
        addon: str,
        config: ClusterConfig,
        role: aws.iam.Role | None,
        after: Sequence[pulumi.Resource],
    ) -> aws.eks.Addon:
        version = config.addon_versions.get(addon)  # type: ignore[call-overload]
        if version is None:
            # EKS's default build for this Kubernetes version: fixed until the cluster's
            # version changes, unlike `most_recent`, so a later `up` does not upgrade it.
            version = aws.eks.get_addon_version(
                addon_name=addon,
                kubernetes_version=config.version,
                most_recent=False,
                opts=pulumi.InvokeOptions(parent=self),
            ).version
        return aws.eks.Addon(
            f"{name}-{addon}",
            cluster_name=cluster.name,
            addon_name=addon,
            addon_version=version,
            configuration_values=(
                json.dumps(VPC_CNI_CONFIGURATION, sort_keys=True) if addon == "vpc-cni" else None
            ),
            service_account_role_arn=role.arn if role is not None else None,
            # Take over what EKS may have installed; keep an operator's tuning on upgrade.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="PRESERVE",
            tags=self._tags.named(f"{name}-{addon}"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
        )

    def _node_groups(
        self,
        name: str,
        cluster: aws.eks.Cluster,
        args: ClusterArgs,
        security_groups: Sequence[pulumi.Input[str]],
        after: Sequence[pulumi.Resource],
    ) -> list[aws.eks.NodeGroup]:
        tags = args.tags
        child = pulumi.ResourceOptions(parent=self)
        node_role = aws.iam.Role(
            f"{name}-nodes",
            description=f"Managed nodes of {name}",
            assume_role_policy=ec2_trust_policy(),
            tags=tags.named(f"{name}-nodes"),
            opts=child,
        )
        # The CNI's permissions live on its own IRSA role, not on every node.
        node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-nodes-{policy}",
                role=node_role.name,
                policy_arn=args.account.managed_policy_arn(policy),
                opts=child,
            )
            for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")
        ]
        groups = []
        for group in args.config.node_groups:
            template = aws.ec2.LaunchTemplate(
                f"{name}-{group.name}",
                description=f"Nodes of {name}/{group.name}: IMDSv2 only, encrypted root volume",
                update_default_version=True,
                # With groups in the template EKS attaches exactly these, so the cluster
                # group is listed too (https://docs.aws.amazon.com/eks/latest/userguide/
                # launch-templates.html).
                vpc_security_group_ids=list(security_groups),
                # Hop limit 1: pods cannot reach the node's credentials; they use IRSA.
                metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                    http_endpoint="enabled",
                    http_tokens="required",
                    http_put_response_hop_limit=1,
                ),
                block_device_mappings=[
                    aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                        device_name="/dev/xvda",
                        ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                            volume_size=group.disk_size_gb,
                            volume_type="gp3",
                            encrypted="true",
                            delete_on_termination="true",
                        ),
                    )
                ],
                tag_specifications=[
                    aws.ec2.LaunchTemplateTagSpecificationArgs(
                        resource_type=kind, tags=tags.named(f"{name}-{group.name}")
                    )
                    for kind in ("instance", "volume")
                ],
                tags=tags.named(f"{name}-{group.name}"),
                opts=child,
            )
            groups.append(
                aws.eks.NodeGroup(
                    f"{name}-{group.name}",
                    cluster_name=cluster.name,
                    node_group_name_prefix=f"{name}-{group.name}-",
                    node_role_arn=node_role.arn,
                    subnet_ids=list(args.private_subnet_ids),
                    ami_type=group.ami_type,
                    capacity_type=group.capacity_type,
                    instance_types=list(group.instance_types),
                    scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                        min_size=group.min_size,
                        desired_size=group.desired_size,
                        max_size=group.max_size,
                    ),
                    update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
                    launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                        id=template.id, version=template.latest_version.apply(str)
                    ),
                    labels={"agent-platform/node-group": group.name},
                    tags=tags.named(f"{name}-{group.name}"),
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        # Nodes join with the role's permissions in place (terraform-aws-eks
                        # orders node groups after the attachments the same way).
                        depends_on=[*after, *node_policies],
                        # The cluster autoscaler owns the current size once nodes run.
                        ignore_changes=["scalingConfig.desiredSize"],
                    ),
                )
            )
        return groups
