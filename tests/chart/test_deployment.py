"""The Deployment: probes, hardening, volumes, spread, drain and config roll-out."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.chart.support import (
    FULLNAME,
    NAMESPACE,
    RELEASE,
    Rendered,
    RenderError,
    containers,
    is_hook,
    pod_labels,
    pod_spec,
    render_env,
)

pytestmark = pytest.mark.helm

SECRETS_DIR = "/run/secrets/agent-service"
UID = 10001


def _agent(rendered: Rendered) -> dict[str, Any]:
    (container,) = containers(rendered.one("Deployment"))
    return container


def test_probes_hit_health_and_ready_on_the_http_port(each_env: tuple[str, Rendered]) -> None:
    _, rendered = each_env
    container = _agent(rendered)
    assert container["ports"] == [
        {"name": "http", "containerPort": 8000, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9464, "protocol": "TCP"},
    ]
    probes = {name: container[name] for name in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert probes["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert probes["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}


def test_only_the_helm_test_pod_lacks_probes(each_env: tuple[str, Rendered]) -> None:
    """The scope of the CKV_K8S_8/9 skips in .checkov.yaml: long-running containers have
    both probes; the only exception is the one-shot test Pod."""
    _, rendered = each_env
    without = [
        f"{owner['kind']}/{owner['metadata']['name']}"
        for owner in rendered.manifests
        if owner["kind"] in {"Deployment", "Pod", "StatefulSet", "DaemonSet"}
        for container in containers(owner)
        if "livenessProbe" not in container or "readinessProbe" not in container
    ]
    assert without == [f"Pod/{FULLNAME}-test-ready"]


def test_pod_and_container_are_hardened(each_env: tuple[str, Rendered]) -> None:
    _, rendered = each_env
    for owner in rendered.manifests:
        if owner["kind"] not in {"Deployment", "Job", "CronJob", "Pod"}:
            continue
        spec = pod_spec(owner)
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True
        # The image's user (the contract in docs/service-interface.md); >= 10000 for CKV_K8S_40.
        assert (pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]) == (UID, UID, UID)
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["privileged"] is False
            assert ctx["readOnlyRootFilesystem"] is True
            assert ctx["runAsNonRoot"] is True
            assert (ctx["runAsUser"], ctx["runAsGroup"]) == (UID, UID)
            assert ctx["capabilities"] == {"drop": ["ALL"]}
            assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
            assert container["resources"]["requests"]
            assert container["resources"]["limits"]
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}} in spec["volumes"]


def test_resources_come_from_values(canary: Rendered) -> None:
    assert _agent(canary)["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"cpu": "2", "memory": "4Gi"},
    }


def test_secrets_are_mounted_as_files_never_env(each_env: tuple[str, Rendered]) -> None:
    env, rendered = each_env
    spec = pod_spec(rendered.one("Deployment"))
    container = _agent(rendered)
    secrets = [v for v in spec["volumes"] if v["name"] == "secrets"]
    if env == "minimal":
        # No existingSecret and no External Secrets: nothing to mount (NOTES.txt warns).
        assert secrets == []
        assert all(m["name"] != "secrets" for m in container["volumeMounts"])
    else:
        secret_name = "agent-service-credentials" if env == "existing-secret" else FULLNAME
        (volume,) = secrets
        assert volume["secret"] == {"secretName": secret_name, "defaultMode": 0o440}
        assert {"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True} in container[
            "volumeMounts"
        ]
    assert "env" not in container
    assert container["envFrom"] == [{"configMapRef": {"name": FULLNAME}}]
    assert "secretKeyRef" not in rendered.text
    assert "secretRef" not in rendered.text


def test_config_map_carries_the_settings_and_leaves_empty_ones_unset(canary: Rendered) -> None:
    data = canary.one("ConfigMap")["data"]
    assert data["PORT"] == "8000"
    assert data["SECRETS_DIR"] == SECRETS_DIR
    assert data["MODEL"] == "anthropic:claude-sonnet-4-5"
    assert data["MAX_BODY_BYTES"] == "1048576"
    assert data["CHECKPOINT_CLEANUP_DAYS"] == "90"
    assert data["DATABASE_URL"].startswith("postgresql://agent_app@")
    assert "ADMIN_PRINCIPALS" not in data
    assert all(isinstance(value, str) and value for value in data.values())


def test_a_config_change_rolls_the_pods() -> None:
    base = render_env("autoscaled")
    changed = render_env("autoscaled", {"config": {"logLevel": "WARNING"}})
    same = render_env("autoscaled", {"replicaCount": 5})

    def checksum(rendered: Rendered) -> str:
        annotations = rendered.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
        value: str = annotations["checksum/config"]
        assert re.fullmatch(r"[0-9a-f]{64}", value)
        return value

    assert checksum(base) != checksum(changed)
    assert checksum(base) == checksum(same)


def test_a_secret_source_change_rolls_the_pods() -> None:
    def checksum(rendered: Rendered) -> str:
        annotations = rendered.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
        value: str = annotations["checksum/secret"]
        return value

    base = render_env("existing-secret")
    assert checksum(base) != checksum(
        render_env("existing-secret", {"existingSecret": "rotated-credentials"})
    )


def test_image_is_pinned_by_digest_when_given(existing_secret: Rendered) -> None:
    image = _agent(existing_secret)["image"]
    assert image == (
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/agent-dev/langgraph-agent"
        "@sha256:0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c"
    )
    untagged = render_env("existing-secret", {"image": {"digest": "", "tag": "1.2.3"}})
    assert str(_agent(untagged)["image"]).endswith("/langgraph-agent:1.2.3")
    default_tag = render_env("existing-secret", {"image": {"digest": "", "tag": ""}})
    assert str(_agent(default_tag)["image"]).endswith("/langgraph-agent:0.1.0")


def test_topology_spread_across_zones_and_nodes(canary: Rendered) -> None:
    constraints = pod_spec(canary.one("Deployment"))["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in constraints] == [
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    ]
    assert constraints[0]["whenUnsatisfiable"] == "DoNotSchedule"
    for constraint in constraints:
        # Primary and canary pods alike (Flagger renames only the name label).
        assert constraint["labelSelector"] == {
            "matchLabels": {
                "app.kubernetes.io/instance": RELEASE,
                "app.kubernetes.io/component": "server",
            }
        }


def test_grace_period_covers_prestop_drain_and_cancellation(each_env: tuple[str, Rendered]) -> None:
    _, rendered = each_env
    spec = pod_spec(rendered.one("Deployment"))
    sleep = _agent(rendered)["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = int(rendered.one("ConfigMap")["data"]["SHUTDOWN_GRACE_SECONDS"])
    assert spec["terminationGracePeriodSeconds"] > sleep + drain + 5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # 5 s preStop + 60 s drain + 5 s cancellation = 70: equal is not enough.
        ({"terminationGracePeriodSeconds": 70}, r"\(70\) must exceed .* \(70\)"),
        ({"config": {"shutdownGraceSeconds": 70}}, r"\(75\) must exceed .* \(80\)"),
        ({"preStopSleepSeconds": 10}, r"\(75\) must exceed .* \(75\)"),
    ],
)
def test_a_grace_period_too_short_for_the_drain_is_refused(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(RenderError, match=r"terminationGracePeriodSeconds " + message):
        render_env("existing-secret", overrides)


def test_the_smallest_sufficient_grace_period_renders() -> None:
    spec = pod_spec(
        render_env("existing-secret", {"terminationGracePeriodSeconds": 71}).one("Deployment")
    )
    assert spec["terminationGracePeriodSeconds"] == 71


def test_no_prestop_sleep_renders_no_hook() -> None:
    rendered = render_env("existing-secret", {"preStopSleepSeconds": 0})
    assert "lifecycle" not in _agent(rendered)


def test_rolling_update_never_drops_below_the_desired_count(existing_secret: Rendered) -> None:
    deployment = existing_secret.one("Deployment")
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert deployment["spec"]["replicas"] == 1
    assert deployment["metadata"]["namespace"] == NAMESPACE


def test_selector_is_the_one_label_flagger_copies(each_env: tuple[str, Rendered]) -> None:
    _, rendered = each_env
    deployment = rendered.one("Deployment")
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": "langgraph-agent"}
    assert deployment["spec"]["template"]["metadata"]["labels"].items() >= selector.items()
    # No other pod of the chart may fall under that selector.
    for owner in rendered.manifests:
        if owner["kind"] in {"Job", "CronJob", "Pod"}:
            assert pod_labels(owner)["app.kubernetes.io/name"] != "langgraph-agent"


def test_service_account_carries_the_irsa_role_and_no_token(canary: Rendered) -> None:
    account = canary.one("ServiceAccount")
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/agent-prod-service"
    }
    assert account["automountServiceAccountToken"] is False
    assert pod_spec(canary.one("Deployment"))["serviceAccountName"] == FULLNAME


def test_external_secrets_sync_the_mounted_secret_from_secrets_manager(
    autoscaled: Rendered,
) -> None:
    external = autoscaled.one("ExternalSecret")
    assert external["apiVersion"] == "external-secrets.io/v1"
    assert not is_hook(external)
    spec = external["spec"]
    assert spec["secretStoreRef"] == {"name": "aws-secrets-manager", "kind": "SecretStore"}
    # At most 5 minutes: a rotated credential reaches the pods while the previous one works.
    assert spec["refreshInterval"] == "5m"
    # Flagger uses this Secret for the primary as it is, instead of a copy refreshed only on
    # promotion: a rotation reaches the serving pods without a release.
    template = spec["target"]["template"]
    assert template["metadata"]["annotations"] == {"flagger.app/config-tracking": "disabled"}
    # The Secret it writes is the one the pods mount.
    (volume,) = [
        v for v in pod_spec(autoscaled.one("Deployment"))["volumes"] if v["name"] == "secrets"
    ]
    assert spec["target"]["name"] == volume["secret"]["secretName"]
    assert spec["target"]["creationPolicy"] == "Owner"
    assert [(d["secretKey"], d["remoteRef"]["property"]) for d in spec["data"]] == [
        ("database_user", "username"),
        ("database_password", "password"),
        ("redis_username", "username"),
        ("redis_password", "password"),
        ("api_keys", "api_keys"),
    ]
    assert all(d["remoteRef"]["key"].startswith("arn:aws:secretsmanager:") for d in spec["data"])


def _secret_checksum(rendered: Rendered) -> str:
    annotations = rendered.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    return str(annotations["checksum/secret"])


def test_a_rotation_or_a_jobs_secret_does_not_roll_the_pods(canary: Rendered) -> None:
    """Rotated values never pass through the chart; what does (how often they are read, the
    jobs' own secrets) must not restart the service either. A new secret source does."""
    before = _secret_checksum(canary)
    quieter = render_env("canary", {"externalSecrets": {"refreshInterval": "1m"}})
    assert _secret_checksum(quieter) == before
    login = canary.one("ExternalSecret", f"{FULLNAME}-backup")["spec"]["data"]
    moved = [
        {**entry, "remoteRef": {**entry["remoteRef"], "key": entry["remoteRef"]["key"] + "2"}}
        for entry in login
    ]
    other_job_secret = render_env("canary", {"externalSecrets": {"backup": {"data": moved}}})
    assert _secret_checksum(other_job_secret) == before
    service = canary.one("ExternalSecret", FULLNAME)["spec"]["data"]
    new_source = render_env("canary", {"externalSecrets": {"data": service[:-1]}})
    assert _secret_checksum(new_source) != before
