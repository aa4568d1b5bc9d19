"""The migration hook Job, the backup and retention CronJobs and the helm test pod."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.chart.support import (
    FULLNAME,
    NAMESPACE,
    RELEASE,
    Rendered,
    RenderError,
    containers,
    is_hook,
    pod_spec,
    render_env,
)

pytestmark = pytest.mark.helm


def test_migration_is_a_pre_install_pre_upgrade_hook_running_migrate(canary: Rendered) -> None:
    job = canary.one("Job", f"{FULLNAME}-migration")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-weight"] == "0"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"
    (container,) = containers(job)
    assert container["args"] == ["migrate"]
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 2


def test_the_migration_brings_its_own_identity_and_password(canary: Rendered) -> None:
    """A pre-install hook runs before the release's objects exist."""
    job = canary.one("Job", f"{FULLNAME}-migration")
    spec = pod_spec(job)
    for kind in ("ServiceAccount", "ExternalSecret"):
        hook = canary.one(kind, f"{FULLNAME}-migration")
        annotations = hook["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert int(annotations["helm.sh/hook-weight"]) < 0
        assert "hook-succeeded" in annotations["helm.sh/hook-delete-policy"]
    assert spec["serviceAccountName"] == f"{FULLNAME}-migration"
    secret = canary.one("ExternalSecret", f"{FULLNAME}-migration")["spec"]
    # The migrator's login, nothing of the service's.
    assert [d["secretKey"] for d in secret["data"]] == ["database_user", "database_password"]
    assert {d["remoteRef"]["key"] for d in secret["data"]} == {
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:agent-prod/db-migrator-AbCdEf"
    }
    (volume,) = [v for v in spec["volumes"] if v["name"] == "secrets"]
    assert volume["secret"]["secretName"] == f"{FULLNAME}-migration"
    assert volume["secret"]["items"] == [
        {"key": "database_user", "path": "database_user"},
        {"key": "database_password", "path": "database_password"},
    ]
    # Settings inline: the ConfigMap does not exist yet either.
    (container,) = containers(job)
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["DATABASE_URL"] == canary.one("ConfigMap")["data"]["DATABASE_URL"]
    assert env == canary.one("ConfigMap")["data"]


def test_first_install_creates_the_identity_the_secret_store_authenticates_as(
    autoscaled: Rendered,
) -> None:
    """staging's store authenticates as the service's ServiceAccount (as infra/ sets it up):
    on the first install that account must exist before the migration's ExternalSecret syncs,
    i.e. before the release's own objects are created."""
    accounts = [a for a in autoscaled.all("ServiceAccount") if a["metadata"]["name"] == FULLNAME]
    regular, hook = sorted(accounts, key=is_hook)
    assert regular["metadata"]["name"] == hook["metadata"]["name"] == FULLNAME
    assert not is_hook(regular)
    annotations = hook["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install"
    secret_hook = autoscaled.one("ExternalSecret", f"{FULLNAME}-migration")["metadata"]
    assert int(annotations["helm.sh/hook-weight"]) < int(
        secret_hook["annotations"]["helm.sh/hook-weight"]
    )
    # Gone before the real one is created, whether the hooks succeed or fail; adoptable if a
    # crashed install left it behind.
    assert set(annotations["helm.sh/hook-delete-policy"].split(",")) == {
        "before-hook-creation",
        "hook-succeeded",
        "hook-failed",
    }
    assert annotations["meta.helm.sh/release-name"] == RELEASE
    assert annotations["meta.helm.sh/release-namespace"] == NAMESPACE
    # The same identity: the IRSA role and no token.
    role = "eks.amazonaws.com/role-arn"
    assert annotations[role] == regular["metadata"]["annotations"][role]
    assert hook["automountServiceAccountToken"] is regular["automountServiceAccountToken"] is False


def test_upgrades_and_other_stores_need_no_bootstrap_identity() -> None:
    upgrade = render_env("autoscaled", upgrade=True)
    assert [
        is_hook(a) for a in upgrade.all("ServiceAccount") if a["metadata"]["name"] == FULLNAME
    ] == [False]
    assert upgrade.has("Job", f"{FULLNAME}-migration")
    for rendered in (
        render_env("autoscaled", {"externalSecrets": {"serviceAccountAuth": False}}),
        # With an existing Secret the migration syncs nothing.
        render_env("existing-secret", {"externalSecrets": {"serviceAccountAuth": True}}),
    ):
        assert (
            len([a for a in rendered.all("ServiceAccount") if a["metadata"]["name"] == FULLNAME])
            == 1
        )


def test_with_an_existing_secret_the_migration_mounts_it(existing_secret: Rendered) -> None:
    spec = pod_spec(existing_secret.one("Job", f"{FULLNAME}-migration"))
    (volume,) = [v for v in spec["volumes"] if v["name"] == "secrets"]
    assert volume["secret"]["secretName"] == "agent-service-credentials"
    assert not existing_secret.all("ExternalSecret")


def test_backup_cronjob_runs_agent_service_backup_with_its_own_role(canary: Rendered) -> None:
    cron = canary.one("CronJob", f"{FULLNAME}-backup")
    assert cron["spec"]["schedule"] == "0 */6 * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = containers(cron)
    assert container["args"] == ["backup"]
    assert container["envFrom"] == [{"configMapRef": {"name": FULLNAME}}]
    spec = pod_spec(cron)
    assert spec["serviceAccountName"] == f"{FULLNAME}-backup"
    account = canary.one("ServiceAccount", f"{FULLNAME}-backup")
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/agent-prod-backup"
    }
    data = canary.one("ConfigMap")["data"]
    assert (data["BACKUP_BUCKET"], data["BACKUP_PREFIX"], data["AWS_REGION"]) == (
        "agent-prod-backups-abc",
        "postgres/",
        "eu-west-1",
    )


def test_retention_cronjob_runs_agent_service_retention_after_90_days(
    existing_secret: Rendered,
) -> None:
    cron = existing_secret.one("CronJob", f"{FULLNAME}-retention")
    (container,) = containers(cron)
    assert container["args"] == ["retention"]
    assert existing_secret.one("ConfigMap")["data"]["CHECKPOINT_CLEANUP_DAYS"] == "90"
    spec = pod_spec(cron)
    # No cloud role: its ServiceAccount has no IRSA annotation.
    assert spec["serviceAccountName"] == f"{FULLNAME}-retention"
    assert (
        "annotations"
        not in existing_secret.one("ServiceAccount", f"{FULLNAME}-retention")["metadata"]
    )


def test_retention_horizon_follows_the_value() -> None:
    rendered = render_env("existing-secret", {"config": {"checkpointCleanupDays": 30}})
    assert rendered.one("ConfigMap")["data"]["CHECKPOINT_CLEANUP_DAYS"] == "30"


def test_jobs_see_only_their_own_database_login(canary: Rendered) -> None:
    service_secret = canary.one("ExternalSecret", FULLNAME)["spec"]["target"]["name"]
    for component, role in (("backup", "backup"), ("retention", "retention")):
        name = f"{FULLNAME}-{component}"
        (volume,) = [
            v for v in pod_spec(canary.one("CronJob", name))["volumes"] if v["name"] == "secrets"
        ]
        assert volume["secret"]["secretName"] == name != service_secret
        assert volume["secret"]["items"] == [
            {"key": "database_user", "path": "database_user"},
            {"key": "database_password", "path": "database_password"},
        ]
        external = canary.one("ExternalSecret", name)["spec"]
        assert {d["remoteRef"]["key"] for d in external["data"]} == {
            f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:agent-prod/db-{role}-AbCdEf"
        }
        annotations = external["target"]["template"]["metadata"]["annotations"]
        assert annotations == {"flagger.app/config-tracking": "disabled"}


def test_with_the_existing_secret_the_jobs_read_its_database_password() -> None:
    rendered = render_env("existing-secret")
    for name in (f"{FULLNAME}-backup", f"{FULLNAME}-retention"):
        (volume,) = [
            v for v in pod_spec(rendered.one("CronJob", name))["volumes"] if v["name"] == "secrets"
        ]
        assert volume["secret"]["items"] == [
            {"key": "database_password", "path": "database_password"}
        ]


@pytest.mark.parametrize("component", ["migration", "backup", "retention"])
def test_a_job_without_its_own_login_is_refused(component: str) -> None:
    """The bad case: a job falling back to the service's credential."""
    with pytest.raises(RenderError, match=f"externalSecrets.{component}.data"):
        render_env("canary", {"externalSecrets": {component: {"data": []}}})


def test_the_rds_master_secret_is_never_mounted() -> None:
    master = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0123-AbCdEf"
    data = [
        {"secretKey": key, "remoteRef": {"key": master, "property": prop}}
        for key, prop in (("database_user", "username"), ("database_password", "password"))
    ]
    with pytest.raises(RenderError, match="RDS-managed master secret"):
        render_env("canary", {"externalSecrets": {"backup": {"data": data}}})


def test_a_refresh_interval_over_five_minutes_is_refused() -> None:
    with pytest.raises(RenderError, match="refreshInterval"):
        render_env("canary", {"externalSecrets": {"refreshInterval": "1h"}})


def test_without_postgres_no_database_jobs_are_rendered() -> None:
    rendered = render_env(
        "existing-secret",
        {"config": {"databaseUrl": "", "redisUrl": ""}, "backup": {"enabled": False}},
    )
    assert not rendered.all("Job")
    assert not rendered.all("CronJob")


def test_backup_without_a_bucket_is_refused() -> None:
    with pytest.raises(RenderError, match=re.escape("backup.enabled requires config.backupBucket")):
        render_env("existing-secret", {"config": {"backupBucket": ""}})


def test_helm_test_pod_calls_ready_through_the_service(each_env: tuple[str, Rendered]) -> None:
    _, rendered = each_env
    pod = rendered.one("Pod", f"{FULLNAME}-test-ready")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = containers(pod)
    assert container["command"][:2] == ["python", "-c"]
    assert f'"http://{FULLNAME}.{NAMESPACE}:80/ready"' in container["command"][2]
    assert container["image"] == containers(rendered.one("Deployment"))[0]["image"]
    assert pod["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize(("status", "succeeds"), [(200, True), (503, False)])
def test_the_test_script_passes_only_on_a_2xx_answer(
    canary: Rendered, status: int, succeeds: bool
) -> None:
    """Runs the pod's script against a loopback server answering `status` on /ready."""
    (container,) = containers(canary.one("Pod", f"{FULLNAME}-test-ready"))
    service_url = f"http://{FULLNAME}.{NAMESPACE}:80/ready"
    requested: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            body = b'{"status": "ok"}' if status == 200 else b'{"database": "unreachable"}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        local_url = f"http://127.0.0.1:{server.server_address[1]}/ready"
        script = container["command"][2].replace(service_url, local_url)
        assert local_url in script
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
        )
    finally:
        server.shutdown()
        server.server_close()
    assert requested == ["/ready"]
    assert (result.returncode == 0) is succeeds, result.stderr
    if not succeeds:
        assert "answered 503" in result.stderr
