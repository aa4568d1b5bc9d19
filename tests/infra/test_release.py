"""The release per stack: the provider for the new cluster, the add-ons, the chart's values
wired to the cloud resources, and the stack outputs."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agent_service.persistence import roles

from infra.config import StackConfig
from infra.release import CHART_PATH
from tests.infra.support import by_name
from tools.plan.offline import REDACTED, RELEASE_TYPE, OfflineRun, RecordedResource

FULL_PLATFORM = [
    "external-secrets",
    "cluster-autoscaler",
    "aws-load-balancer-controller",
    "oci://docker.io/envoyproxy/gateway-crds-helm",
    "oci://docker.io/envoyproxy/gateway-helm",
    "metrics-server",
    "kube-prometheus-stack",
    "flagger",
    "loadtester",
]
ADDONS = {
    "dev": ["external-secrets", "cluster-autoscaler", "metrics-server"],
    "staging": FULL_PLATFORM,
    "prod": FULL_PLATFORM,
}


def _service_release(run: OfflineRun) -> RecordedResource:
    (release,) = [
        r
        for r in run.of_type(RELEASE_TYPE)
        if "repositoryOpts" not in r.inputs and not r.inputs["chart"].startswith("oci://")
    ]
    return release


def test_kubernetes_provider_uses_the_new_clusters_kubeconfig(run: OfflineRun) -> None:
    provider = run.one("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == REDACTED
    assert "kubeconfig" in provider.secret_inputs
    # Installing anything needs the deployer's access entry and nodes to run on.
    needed = {
        r.urn
        for r in run.resources
        if r.type
        in (
            "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
            "aws:eks/nodeGroup:NodeGroup",
        )
    }
    assert needed <= set(provider.depends_on)


def test_service_release_installs_the_local_chart(run: OfflineRun, config: StackConfig) -> None:
    release = _service_release(run)
    assert release.inputs["chart"] == str(CHART_PATH)
    assert CHART_PATH.parts[-2:] == ("charts", "langgraph-agent")
    assert release.inputs["name"] == config.release.release_name
    assert release.inputs["namespace"] == config.release.namespace
    assert release.inputs["atomic"] is True
    assert release.inputs["cleanupOnFail"] is True
    provider = run.one("pulumi:providers:kubernetes")
    assert release.provider.rsplit("::", 1)[0] == provider.urn
    namespace = run.one("kubernetes:core/v1:Namespace")
    assert namespace.inputs["metadata"]["name"] == config.release.namespace
    labels = namespace.inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace.urn in release.depends_on


def _addons(run: OfflineRun) -> list[RecordedResource]:
    service = _service_release(run)
    return [r for r in run.of_type(RELEASE_TYPE) if r.urn != service.urn]


def test_addons_from_upstream_charts_per_stack(run: OfflineRun, stack: str) -> None:
    addons = _addons(run)
    assert [a.inputs["chart"] for a in addons] == ADDONS[stack]
    for before, addon in itertools.pairwise(addons):
        # Installed in order: each may need the CRDs of the one before.
        assert before.urn in addon.depends_on
    for addon in addons:
        if addon.inputs["chart"].startswith("oci://"):
            assert "repositoryOpts" not in addon.inputs
        else:
            assert addon.inputs["repositoryOpts"]["repo"].startswith("https://")
        # Pinned: a chart version, not a range or a channel.
        assert addon.inputs["version"].lstrip("v")[0].isdigit(), "add-on charts are pinned"
    # The service's release waits for the CRDs and controllers it relies on.
    assert {a.urn for a in addons} <= set(_service_release(run).depends_on)


def test_values_carry_no_secret(run: OfflineRun) -> None:
    release = _service_release(run)
    assert release.secret_inputs == ()
    dumped = json.dumps(release.inputs["values"])
    assert REDACTED not in dumped
    assert "password=" not in dumped.lower()


JOBS = ("migration", "backup", "retention")


def _values(run: OfflineRun) -> dict[str, Any]:
    return run.service_release_values()


def test_database_url_points_at_rds_with_tls_and_no_password(run: OfflineRun, stack: str) -> None:
    db = by_name(run, "aws:rds/instance:Instance")[f"agent-{stack}-db"]
    url = urlsplit(_values(run)["config"]["databaseUrl"])
    assert url.scheme == "postgresql"
    assert url.hostname == db.outputs["address"]
    assert url.port == 5432
    # The service's own role, never the master user.
    assert url.username == roles.APP != db.inputs["username"]
    assert url.password is None
    assert url.path == "/agent"
    query = parse_qs(url.query)
    assert query["sslmode"] == ["verify-full"]
    assert query["sslrootcert"] == ["/etc/ssl/certs/rds-global-bundle.pem"]


def test_redis_url_is_tls_to_the_primary(run: OfflineRun) -> None:
    redis = run.one("aws:elasticache/replicationGroup:ReplicationGroup")
    url = urlsplit(_values(run)["config"]["redisUrl"])
    assert url.scheme == "rediss"
    assert url.hostname == redis.outputs["primaryEndpointAddress"]
    assert url.port == 6379
    assert url.password is None


def test_service_account_assumes_the_service_role(run: OfflineRun, stack: str) -> None:
    role = by_name(run, "aws:iam/role:Role")[f"agent-{stack}-service"]
    account = _values(run)["serviceAccount"]
    assert account["annotations"] == {"eks.amazonaws.com/role-arn": role.outputs["arn"]}
    assert run.outputs["serviceRoleArn"] == role.outputs["arn"]


def test_external_secrets_point_at_the_managed_secrets(run: OfflineRun, stack: str) -> None:
    external = _values(run)["externalSecrets"]
    assert external["enabled"] is True
    refs = {d["secretKey"]: d["remoteRef"] for d in external["data"]}
    db = by_name(run, "aws:rds/instance:Instance")[f"agent-{stack}-db"]
    secrets = by_name(run, "aws:secretsmanager/secret:Secret")
    app_login = secrets[f"agent-{stack}-db-app"].outputs["arn"]
    assert refs["database_user"] == {"key": app_login, "property": "username"}
    assert refs["database_password"] == {"key": app_login, "property": "password"}
    master = db.outputs["masterUserSecrets"][0]["secretArn"]
    every = [*external["data"], *(d for job in JOBS for d in external[job]["data"])]
    assert master not in {d["remoteRef"]["key"] for d in every}
    for job, workload in zip(JOBS, ("migrator", "backup", "retention"), strict=True):
        login = secrets[f"agent-{stack}-db-{workload}"].outputs["arn"]
        assert {d["remoteRef"]["key"] for d in external[job]["data"]} == {login}
    redis_user = secrets[f"agent-{stack}-cache-app-user"].outputs["arn"]
    assert refs["redis_username"] == {"key": redis_user, "property": "username"}
    assert refs["redis_password"] == {"key": redis_user, "property": "password"}
    assert refs["api_keys"]["key"] == secrets[f"agent-{stack}-service-secret"].outputs["arn"]
    # The offline model needs no provider key.
    assert "model_api_key" not in refs


def test_backup_settings_and_image(run: OfflineRun, config: StackConfig) -> None:
    values = _values(run)
    bucket = by_name(run, "aws:s3/bucket:Bucket")[f"{config.name}-backups"]
    assert values["config"]["backupBucket"] == bucket.outputs["bucket"]
    assert values["config"]["backupPrefix"] == config.backups.prefix
    assert values["config"]["awsRegion"] == config.region
    assert values["backup"]["enabled"] is True
    repository = run.one("aws:ecr/repository:Repository")
    assert values["image"]["repository"] == repository.outputs["repositoryUrl"]
    assert values["image"]["tag"] == config.release.image.tag


def test_replicas_autoscaling_disruption_budget_canary_per_stack(
    run: OfflineRun, stack: str
) -> None:
    values = _values(run)
    expected = {
        "dev": (1, False, False, False, False),
        "staging": (2, True, True, True, True),
        "prod": (3, True, True, True, True),
    }[stack]
    assert (
        values["replicaCount"],
        values["autoscaling"]["enabled"],
        values["podDisruptionBudget"]["enabled"],
        values["canary"]["enabled"],
        values["monitoring"]["enabled"],
    ) == expected
    if stack == "prod":
        assert values["autoscaling"]["minReplicas"] >= 3
        assert values["podDisruptionBudget"]["minAvailable"] == 2


def test_network_policy_egress_reaches_only_the_data_subnets(run: OfflineRun) -> None:
    egress = _values(run)["networkPolicy"]["egress"]
    private = sorted(
        s.inputs["cidrBlock"] for s in run.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name
    )
    assert sorted(egress["postgres"]["cidrs"]) == private
    assert egress["postgres"]["port"] == 5432
    assert sorted(egress["redis"]["cidrs"]) == private
    assert egress["redis"]["port"] == 6379
    assert "0.0.0.0/0" not in egress["s3"]["cidrs"]
    assert egress["modelProvider"]["cidrs"] == []


def test_stack_outputs(run: OfflineRun, stack: str, config: StackConfig) -> None:
    edge = {"edgeCertificateArn"} if config.edge is not None else set()
    assert set(run.outputs) - edge == {
        "clusterName",
        "kubeconfig",
        "vpcId",
        "databaseEndpoint",
        "databaseMasterSecretArn",
        "databaseLoginSecretArns",
        "redisEndpoint",
        "redisAppUserSecretArn",
        "repositoryUrl",
        "backupBucket",
        "backupPrefix",
        "serviceRoleArn",
        "backupRoleArn",
        "serviceSecretArn",
        "deployPhase",
        "releaseImage",
        "releaseStatus",
        # What the DR runbooks read (pitr.md, region-loss.md).
        "databaseIdentifier",
        "restoredDatabase",
        "replicaBucket",
        "drRestoreRoleArn",
    }
    assert run.outputs["deployPhase"] == "all"
    assert run.outputs["releaseImage"].startswith(f"{run.outputs['repositoryUrl']}@sha256:")
    assert run.secret_outputs == {"kubeconfig"}
    assert run.outputs["clusterName"] == f"agent-{stack}"
    db = by_name(run, "aws:rds/instance:Instance")[f"agent-{stack}-db"]
    assert run.outputs["databaseEndpoint"] == f"{db.outputs['address']}:5432"
    assert run.outputs["redisEndpoint"].endswith(".cache.amazonaws.com:6379")
    assert run.outputs["repositoryUrl"].endswith(f"/agent-{stack}/langgraph-agent")


def test_secret_store_reads_secrets_manager_as_the_service_account(
    run: OfflineRun, config: StackConfig
) -> None:
    store = run.one("kubernetes:external-secrets.io/v1:SecretStore")
    assert store.inputs["metadata"]["namespace"] == config.release.namespace
    aws = store.inputs["spec"]["provider"]["aws"]
    assert aws["service"] == "SecretsManager"
    assert aws["region"] == config.region
    assert aws["auth"] == {"jwt": {"serviceAccountRef": {"name": config.release.service_account}}}
    assert _values(run)["externalSecrets"]["secretStoreRef"] == {
        "name": store.inputs["metadata"]["name"],
        "kind": "SecretStore",
    }
    (operator,) = [r for r in run.of_type(RELEASE_TYPE) if r.inputs["chart"] == "external-secrets"]
    assert operator.urn in store.depends_on
    assert store.urn in _service_release(run).depends_on


def test_backup_job_has_its_own_service_account_and_role(run: OfflineRun, stack: str) -> None:
    backup = _values(run)["backup"]
    role = by_name(run, "aws:iam/role:Role")[f"agent-{stack}-backup"]
    assert backup["serviceAccount"] == {
        "create": True,
        "name": "langgraph-agent-backup",
        "annotations": {"eks.amazonaws.com/role-arn": role.outputs["arn"]},
    }
    assert run.outputs["backupRoleArn"] == role.outputs["arn"]
    assert _values(run)["serviceAccount"]["name"] != backup["serviceAccount"]["name"]


def test_edge_and_canary_go_through_the_gateway(run: OfflineRun, config: StackConfig) -> None:
    values = _values(run)
    # ingress-nginx is retired: no stack renders an Ingress or installs the controller.
    assert values["ingress"] == {"enabled": False}
    assert not [r for r in run.of_type(RELEASE_TYPE) if r.inputs["chart"] == "ingress-nginx"]
    edge = config.edge
    if edge is None:
        assert values["httpRoute"] == {"enabled": False}
        assert values["canary"]["enabled"] is False
        return
    assert values["httpRoute"] == {
        "enabled": True,
        "parentRefs": [
            {"name": "public", "namespace": "envoy-gateway-system", "sectionName": "https"}
        ],
        "hostnames": [edge.host],
        "paths": [{"type": "PathPrefix", "value": "/"}],
    }
    assert values["canary"]["provider"] == "gatewayapi:v1"
    # The load test reaches the proxies' Service by the name the EnvoyProxy gives it.
    proxy = _gateway_object(run, "EnvoyProxy")
    service = proxy["spec"]["provider"]["kubernetes"]["envoyService"]["name"]
    assert values["canary"]["loadTest"]["gatewayUrl"] == (
        f"http://{service}.envoy-gateway-system:443"
    )
    (flagger,) = [r for r in run.of_type(RELEASE_TYPE) if r.inputs["chart"] == "flagger"]
    assert flagger.inputs["values"]["meshProvider"] == "gatewayapi:v1"
    assert flagger.inputs["values"]["metricsServer"].startswith(
        "http://kube-prometheus-stack-prometheus.monitoring"
    )
    # Only the Gateway's proxies (and Prometheus, the load tester) reach the pods.
    gateway = _gateway_object(run, "Gateway")["metadata"]
    assert values["networkPolicy"]["gateway"] == {
        "name": gateway["name"],
        "namespace": gateway["namespace"],
    }
    assert "ingressControllerNamespace" not in values["networkPolicy"]
    assert values["networkPolicy"]["prometheusNamespace"] == "monitoring"


def _gateway_object(run: OfflineRun, kind: str) -> dict[str, Any]:
    (found,) = [r.inputs for r in run.resources if r.type.endswith(f":{kind}")]
    return found


def test_container_resources_per_stack(run: OfflineRun, stack: str) -> None:
    resources = _values(run).get("resources")
    expected = {
        "dev": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        # B4: staging sets its requests, as the pack's kubernetes-resources-set demands.
        "staging": {
            "requests": {"cpu": "500m", "memory": "1Gi"},
            "limits": {"cpu": "1", "memory": "2Gi"},
        },
        "prod": {
            "requests": {"cpu": "1", "memory": "2Gi"},
            "limits": {"cpu": "2", "memory": "4Gi"},
        },
    }[stack]
    assert resources == expected
