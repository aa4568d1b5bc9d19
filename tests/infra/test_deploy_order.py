"""M1 and the phases: what `pulumi up` must create before what, read from the dependencies
the program registers (the engine creates a resource only after everything in its
`depends_on`), and the `cloud` phase that declares no Kubernetes resource."""

from __future__ import annotations

import pytest

from infra.program import PHASE_VARIABLE
from tests.infra.support import by_name
from tools.plan.offline import OfflineRun, RecordedResource, run_offline

RELEASE = "kubernetes:helm.sh/v3:Release"


def _needs(resource: RecordedResource, *needed: RecordedResource) -> None:
    missing = [n.name for n in needed if n.urn not in resource.depends_on]
    assert not missing, f"{resource.name} is not ordered after {missing}"


def _children_named(run: OfflineRun, type_: str, *names: str) -> list[RecordedResource]:
    found = by_name(run, type_)
    return [found[name] for name in names]


def test_the_cluster_waits_for_its_roles_permissions(run: OfflineRun, stack: str) -> None:
    name = f"agent-{stack}"
    cluster = run.one("aws:eks/cluster:Cluster")
    (attachment,) = _children_named(
        run, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", f"{name}-cluster-policy"
    )
    (key_use,) = _children_named(
        run, "aws:iam/rolePolicy:RolePolicy", f"{name}-cluster-secrets-key"
    )
    (logs,) = _children_named(run, "aws:cloudwatch/logGroup:LogGroup", f"{name}-control-plane")
    _needs(cluster, attachment, key_use, logs)
    # The key's policy is part of the key itself: the key ARN in encryptionConfig orders it.
    key = by_name(run, "aws:kms/key:Key")[f"{name}-eks-secrets"]
    assert key.inputs["policy"]
    assert cluster.inputs["encryptionConfig"]["provider"]["keyArn"] == key.outputs["arn"]


def test_node_groups_wait_for_the_node_role_and_the_network_addons(
    run: OfflineRun, stack: str
) -> None:
    name = f"agent-{stack}"
    attachments = _children_named(
        run,
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        f"{name}-nodes-AmazonEKSWorkerNodePolicy",
        f"{name}-nodes-AmazonEC2ContainerRegistryPullOnly",
    )
    addons = _children_named(run, "aws:eks/addon:Addon", f"{name}-vpc-cni", f"{name}-kube-proxy")
    for group in run.of_type("aws:eks/nodeGroup:NodeGroup"):
        _needs(group, *attachments, *addons)


def test_addons_wait_for_their_irsa_permissions(run: OfflineRun, stack: str) -> None:
    name = f"agent-{stack}"
    attachments = by_name(run, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    addons = by_name(run, "aws:eks/addon:Addon")
    _needs(addons[f"{name}-vpc-cni"], attachments[f"{name}-vpc-cni"])
    _needs(addons[f"{name}-aws-ebs-csi-driver"], attachments[f"{name}-ebs-csi"])


def test_the_release_waits_for_its_permissions_and_secrets(run: OfflineRun, stack: str) -> None:
    name = f"agent-{stack}"
    (service,) = [r for r in run.of_type(RELEASE) if r.inputs["chart"].endswith("/langgraph-agent")]
    policies = _children_named(
        run, "aws:iam/rolePolicy:RolePolicy", f"{name}-service", f"{name}-backup"
    )
    versions = _children_named(
        run,
        "aws:secretsmanager/secretVersion:SecretVersion",
        f"{name}-service-secret",
        f"{name}-cache-app-user",
        # Each workload's database login: the release's ExternalSecrets read them.
        *(f"{name}-db-{workload}" for workload in ("migrator", "app", "backup", "retention")),
    )
    _needs(service, *policies, *versions)
    secret_store = run.one("kubernetes:external-secrets.io/v1:SecretStore")
    _needs(service, secret_store)


def test_kubernetes_waits_for_cluster_access_and_the_autoscalers_role(
    run: OfflineRun, stack: str
) -> None:
    provider = run.one("pulumi:providers:kubernetes")
    needed = [
        *run.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation"),
        *run.of_type("aws:eks/nodeGroup:NodeGroup"),
        *run.of_type("aws:eks/addon:Addon"),
        by_name(run, "aws:iam/rolePolicy:RolePolicy")[f"agent-{stack}-cluster-autoscaler"],
    ]
    _needs(provider, *needed)


def test_the_cloud_phase_declares_no_kubernetes_resource(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PHASE_VARIABLE, "cloud")
    run = run_offline("prod")
    assert not [
        r
        for r in run.resources
        if r.type.startswith(("kubernetes:", "pulumi:providers:kubernetes"))
    ]
    assert run.outputs["deployPhase"] == "cloud"
    # The registry exists to push to, and nothing asked ECR for the image yet.
    assert run.of_type("aws:ecr/repository:Repository")
    assert "releaseImage" not in run.outputs


def test_an_unknown_phase_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PHASE_VARIABLE, "kubernetes")
    with pytest.raises(
        Exception, match=r"AGENT_PLATFORM_PHASE='kubernetes': the phases are cloud, all"
    ):
        run_offline("dev")
