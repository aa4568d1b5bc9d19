"""The chart against the service's own code (docs/service-interface.md): the variables it sets
are settings the service reads, with the service's defaults and within the service's bounds;
the secret files are the service's secret settings; the commands exist; a job's environment
gives the DR commands what they read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from agent_service.cli import COMMANDS
from agent_service.commands.common import command_settings
from agent_service.settings import DEFAULT_SECRETS_DIR, Settings
from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings

from tests.chart.support import (
    CHART_DIR,
    FULLNAME,
    Manifest,
    Rendered,
    containers,
    pod_spec,
    render,
    render_env,
)
from tools.chart.settings_doc import LEFT_TO_SERVICE

pytestmark = pytest.mark.helm

SCHEMA: dict[str, Any] = json.loads((CHART_DIR / "values.schema.json").read_text())
CONFIG_SCHEMA: dict[str, Any] = SCHEMA["properties"]["config"]["properties"]
MODELS: tuple[type[BaseSettings], ...] = (Settings,)
# Settings the chart deliberately leaves to the service (the generator says why).
NOT_FROM_VALUES = {name.upper(): why for name, why in LEFT_TO_SERVICE.items()}
# Read by the service outside the settings model: none (SECRETS_DIR is a setting too).
EXTRA_VARIABLES: set[str] = set()


def _is_secret(model: type[BaseModel], field: str) -> bool:
    # SecretStr, SecretStr | None, dict[str, SecretStr]...
    return SecretStr.__name__ in str(model.model_fields[field].annotation)


SECRET_FIELDS = {field for field in Settings.model_fields if _is_secret(Settings, field)}
PLAIN_VARIABLES = {
    field.upper()
    for model in MODELS
    for field in model.model_fields
    if not _is_secret(model, field)
}


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No setting leaks in from the test process: the models see only what a test sets."""
    for model in MODELS:
        for field in model.model_fields:
            monkeypatch.delenv(field.upper(), raising=False)
    for name in EXTRA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _config_map(rendered: Rendered) -> dict[str, str]:
    data: dict[str, str] = rendered.one("ConfigMap")["data"]
    return data


def _parsed(data: Mapping[str, str]) -> dict[type[BaseSettings], BaseSettings]:
    """The rendered variables through the service's own models (types, bounds, validators)."""
    values = {name.lower(): value for name, value in data.items()}
    return {model: model.model_validate(values) for model in MODELS}


def test_every_variable_the_chart_sets_is_one_the_service_reads(
    each_env: tuple[str, Rendered],
) -> None:
    _, rendered = each_env
    known = PLAIN_VARIABLES | EXTRA_VARIABLES
    assert set(_config_map(rendered)) - known == set()
    for owner in rendered.manifests:
        if owner["kind"] in {"Deployment", "Job", "CronJob", "Pod"}:
            for container in containers(owner):
                names = {e["name"] for e in container.get("env", [])}
                assert names - known == set(), owner["metadata"]["name"]
    # Secrets are files, never variables.
    assert {name.lower() for name in _config_map(rendered)} & SECRET_FIELDS == set()


def test_every_setting_of_the_service_can_be_set_from_values() -> None:
    """With every optional value given, the ConfigMap carries each non-secret setting the
    service has, except the ones the chart leaves alone on purpose."""
    rendered = render_env(
        "existing-secret",
        {
            "config": {
                "adminPrincipals": "ops",
                "principalRoles": {"ops": ["user", "approver"]},
                "principalGraphs": {"ops": ["main_agent"]},
                "storeItemTtlDays": 30,
                "storeEmbeddings": "openai:text-embedding-3-small",
                "storeEmbeddingDims": 1536,
                "backupKmsKeyId": "alias/agent-backups",
                "otelExporterOtlpEndpoint": "http://otel-collector.monitoring:4317",
                "webhookAllowedHosts": "hooks.example.com,*.example.org",
            }
        },
    )
    missing = PLAIN_VARIABLES - set(_config_map(rendered)) - set(NOT_FROM_VALUES)
    assert missing == set()
    assert set(NOT_FROM_VALUES) <= PLAIN_VARIABLES, "a deliberate omission names no setting"


def test_chart_defaults_are_the_service_defaults(
    minimal: Rendered, clean_environment: pytest.MonkeyPatch
) -> None:
    data = _config_map(minimal)
    assert data["SECRETS_DIR"] == DEFAULT_SECRETS_DIR
    parsed = _parsed({k: v for k, v in data.items() if k not in EXTRA_VARIABLES})
    for model, settings in parsed.items():
        defaults = model.model_validate({})
        for field in model.model_fields:
            if _is_secret(model, field) or field.upper() in NOT_FROM_VALUES:
                continue
            if field == "metrics_port":
                # The one deliberate difference: the service serves /metrics on PORT unless
                # told otherwise; the chart moves it to a port no Ingress routes.
                assert getattr(settings, field) == 9464
                continue
            expected = getattr(defaults, field)
            if field.upper() in data:
                assert getattr(settings, field) == expected, field
            else:
                # Left unset, so the service's default applies: only for empty defaults.
                assert expected in (None, "", {}), field


def _bounds(which: str) -> dict[str, Any]:
    """Every numeric config value at the schema's lower (or upper) bound."""
    values: dict[str, Any] = {}
    for key, schema in CONFIG_SCHEMA.items():
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not {"integer", "number"} & set(types):
            continue
        if which == "lower":
            if "minimum" in schema:
                values[key] = schema["minimum"]
            elif "exclusiveMinimum" in schema:
                values[key] = schema["exclusiveMinimum"] + 0.5
        elif "maximum" in schema:
            values[key] = schema["maximum"]
    return values


@pytest.mark.parametrize("which", ["lower", "upper"])
def test_what_the_schema_accepts_the_service_accepts(
    which: str, clean_environment: pytest.MonkeyPatch
) -> None:
    bounds = _bounds(which)
    assert len(bounds) >= (15 if which == "lower" else 6)
    # The chart wants the drain to cover the request timeout (checked in test_deployment).
    if "requestTimeoutSeconds" in bounds:
        drain = max(bounds.get("shutdownGraceSeconds", 0), bounds["requestTimeoutSeconds"])
        bounds["shutdownGraceSeconds"] = drain
    # The pod's grace period must cover the longest drain the service accepts.
    grace = int(bounds.get("shutdownGraceSeconds", 0)) + 60
    data = _config_map(
        render_env(
            "existing-secret", {"config": bounds, "terminationGracePeriodSeconds": max(grace, 45)}
        )
    )
    parsed = _parsed({k: v for k, v in data.items() if k not in EXTRA_VARIABLES})
    settings = parsed[Settings]
    assert isinstance(settings, Settings)
    assert settings.workers == bounds.get("workers", settings.workers)


def test_a_value_the_service_refuses_is_caught_by_the_test(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    """The check above can fail: a bound the service refuses raises."""
    with pytest.raises(ValueError, match="workers"):
        _parsed({"WORKERS": "0"})


def test_the_secret_files_are_the_services_secret_settings() -> None:
    item = SCHEMA["properties"]["externalSecrets"]["properties"]["data"]["items"]
    assert set(item["properties"]["secretKey"]["enum"]) == SECRET_FIELDS
    # The files docs/service-interface.md lists.
    assert {
        "database_user",
        "database_password",
        "redis_username",
        "redis_password",
        "api_keys",
        "model_api_key",
        "langsmith_api_key",
        "webhook_signing_secret",
    } == SECRET_FIELDS


def test_every_command_the_chart_runs_is_a_service_command(each_env: tuple[str, Rendered]) -> None:
    _, rendered = each_env
    (server,) = containers(rendered.one("Deployment"))
    run = [server["args"]]
    for owner in rendered.all("Job") + rendered.all("CronJob"):
        run += [c["args"] for c in containers(owner)]
    for args in run:
        assert len(args) == 1, args
        assert args[0] in COMMANDS, args
    assert server["args"] == ["serve"]


def _job_environment(rendered: Rendered, owner: Manifest, secrets_dir: Path) -> dict[str, str]:
    """What the job's process sees: its variables (inline or from the ConfigMap) with
    SECRETS_DIR pointing at a local copy of its secret volume."""
    (container,) = containers(owner)
    if "envFrom" in container:
        (source,) = container["envFrom"]
        assert source["configMapRef"]["name"] == rendered.one("ConfigMap")["metadata"]["name"]
        env = dict(_config_map(rendered))
    else:
        env = {e["name"]: e["value"] for e in container["env"]}
    spec = pod_spec(owner)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    (volume,) = [v for v in spec["volumes"] if v["name"] == "secrets"]
    assert mounts["secrets"] == env["SECRETS_DIR"]
    for item in volume["secret"]["items"]:
        # The file as the kubelet writes it, trailing newline and all.
        (secrets_dir / item["path"]).write_text(f"pw-{item['key']}\n")
    env["SECRETS_DIR"] = str(secrets_dir)
    return env


@pytest.mark.parametrize("component", ["backup", "retention"])
def test_a_cron_jobs_environment_gives_the_dr_command_its_settings(
    canary: Rendered, component: str, tmp_path: Path, clean_environment: pytest.MonkeyPatch
) -> None:
    """The real settings loader of `agent-service backup|retention` on the CronJob's
    environment and secret files."""
    env = _job_environment(canary, canary.one("CronJob", f"{FULLNAME}-{component}"), tmp_path)
    for name, value in env.items():
        clean_environment.setenv(name, value)
    settings = command_settings()
    assert settings.database_url == env["DATABASE_URL"]
    assert "password=pw-database_password" in settings.database_conninfo()
    assert settings.redis_password is None  # the jobs get the database password only
    if component == "backup":
        assert settings.backup_bucket == "agent-prod-backups-abc"
        assert settings.backup_prefix == "postgres/"
        assert settings.aws_region == "eu-west-1"
        assert settings.backup_kms_key_id is not None
        assert settings.backup_kms_key_id.startswith("arn:aws:kms:eu-west-1:")
    else:
        assert settings.checkpoint_cleanup_days == 90


def test_the_migration_hooks_inline_environment_reaches_the_database(
    canary: Rendered, tmp_path: Path, clean_environment: pytest.MonkeyPatch
) -> None:
    env = _job_environment(canary, canary.one("Job", f"{FULLNAME}-migration"), tmp_path)
    for name, value in env.items():
        clean_environment.setenv(name, value)
    settings = command_settings()
    assert settings.database_url == _config_map(canary)["DATABASE_URL"]
    assert "password=pw-database_password" in settings.database_conninfo()


def test_defaults_render_without_a_values_file() -> None:
    # The chart's own defaults (no ci/ file) still meet every rule above.
    assert set(_config_map(render())) <= PLAIN_VARIABLES | EXTRA_VARIABLES


def test_object_settings_reach_the_service_as_the_json_it_reads(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    roles = {"ops": ["user", "approver"]}
    graphs = {"ops": ["main_agent"]}
    rendered = render_env(
        "existing-secret", {"config": {"principalRoles": roles, "principalGraphs": graphs}}
    )
    data = _config_map(rendered)
    for name in ("PRINCIPAL_ROLES", "PRINCIPAL_GRAPHS"):
        clean_environment.setenv(name, data[name])
    clean_environment.setenv("API_KEYS", json.dumps({"ops": "ops-key-0123456789abcdef"}))
    settings = Settings()
    assert (settings.principal_roles, settings.principal_graphs) == (roles, graphs)
