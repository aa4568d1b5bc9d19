"""values.yaml, values.schema.json and the README's parameters table stay in step, and the
schema refuses what it must."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from tests.chart.support import CHART_DIR, RenderError, load_yaml, render_env
from tools.chart.values_doc import UndocumentedKeyError, parameters

pytestmark = pytest.mark.helm

SCHEMA: dict[str, Any] = json.loads((CHART_DIR / "values.schema.json").read_text())


def _schema_at(path: str) -> dict[str, Any]:
    node = SCHEMA
    for part in path.split("."):
        assert "properties" in node, f"{path}: the schema does not describe {part!r}"
        assert part in node["properties"], f"{path}: no schema for {part!r}"
        node = node["properties"][part]
    return node


def _objects(node: Any, where: str = "$") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "properties" in node:
            found.append((where, node))
        for key, child in node.items():
            found += _objects(child, f"{where}.{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _objects(child, f"{where}[{index}]")
    return found


def test_schema_is_draft_07() -> None:
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(SCHEMA)


def test_defaults_and_ci_values_meet_the_schema() -> None:
    validator = jsonschema.Draft7Validator(SCHEMA)
    defaults = load_yaml(CHART_DIR / "values.yaml")
    assert list(validator.iter_errors(defaults)) == []


def test_every_values_key_has_a_schema() -> None:
    for parameter in parameters():
        _schema_at(parameter.path)


def test_every_object_in_the_schema_is_closed() -> None:
    open_objects = [
        where for where, node in _objects(SCHEMA) if node.get("additionalProperties") is not False
    ]
    assert open_objects == []


def test_every_values_key_is_commented(tmp_path: Any) -> None:
    assert len(parameters()) > 150
    uncommented = tmp_path / "values.yaml"
    uncommented.write_text("# The image.\nimage:\n  repository: x\n")
    with pytest.raises(UndocumentedKeyError, match=re.escape("`image.repository` has no comment")):
        parameters(uncommented)


def test_readme_lists_every_values_key() -> None:
    readme = (CHART_DIR / "README.md").read_text()
    for parameter in parameters():
        assert f"| `{parameter.path}` |" in readme


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"replicaCount": "three"}, "/replicaCount': got string, want integer"),
        ({"replicaCount": 2.5}, "/replicaCount': got number, want integer"),
        ({"surprise": True}, "additional properties 'surprise' not allowed"),
        ({"canary": {"enabled": "yes"}}, "/canary/enabled': got string, want boolean"),
        ({"canary": {"stages": []}}, "additional properties 'stages' not allowed"),
        ({"canary": {"provider": "kong"}}, "/canary/provider"),
        ({"autoscaling": {"targetCPUUtilizationPercentage": 170}}, "maximum"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        (
            {"config": {"databaseUrl": "postgresql://agent:hunter2@db:5432/agent"}},
            "/config/databaseUrl",
        ),
        ({"config": {"workers": 0}}, "/config/workers"),
        ({"config": {"logLevel": "LOUD"}}, "/config/logLevel"),
        (
            {"config": {"databasePassword": "x"}},
            "additional properties 'databasePassword' not allowed",
        ),
        ({"podSecurityContext": {"runAsUser": 0}}, "/podSecurityContext/runAsUser"),
        ({"podSecurityContext": {"runAsUser": 1000}}, "/podSecurityContext/runAsUser"),
        ({"securityContext": {"runAsGroup": 0}}, "/securityContext/runAsGroup"),
        (
            {"config": {"databaseUrl": "postgresql://agent@db:5432/agent?password=hunter2"}},
            "/config/databaseUrl",
        ),
        ({"config": {"storeItemTtlDays": 0}}, "/config/storeItemTtlDays"),
        ({"config": {"backupKmsKeyId": "my key"}}, "/config/backupKmsKeyId"),
        ({"config": {"maxBodyBytes": 1000}}, "/config/maxBodyBytes"),
        ({"externalSecrets": {"serviceAccountAuth": "yes"}}, "/externalSecrets/serviceAccountAuth"),
        (
            {"monitoring": {"prometheusRule": {"requestsMetric": "x"}}},
            "additional properties 'requestsMetric' not allowed",
        ),
        (
            {"securityContext": {"readOnlyRootFilesystem": False}},
            "/securityContext/readOnlyRootFilesystem",
        ),
        (
            {"securityContext": {"allowPrivilegeEscalation": True}},
            "/securityContext/allowPrivilegeEscalation",
        ),
        (
            {"networkPolicy": {"egress": {"postgres": {"cidrs": ["db.internal"]}}}},
            "/networkPolicy/egress/postgres/cidrs/0",
        ),
        (
            {
                "externalSecrets": {
                    "data": [{"secretKey": "root_password", "remoteRef": {"key": "k"}}]
                }
            },
            "/externalSecrets/data/0/secretKey",
        ),
        ({"service": {"port": 70000}}, "/service/port"),
        ({"backup": {"schedule": "daily"}}, "/backup/schedule"),
        ({"tolerations": [{"key": "k", "operator": "Maybe"}]}, "/tolerations/0/operator"),
    ],
)
def test_the_schema_refuses(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(RenderError, match="values don't meet the specifications") as error:
        render_env("existing-secret", overrides)
    assert message in str(error.value)


def test_a_pool_minimum_above_its_maximum_is_refused() -> None:
    with pytest.raises(
        RenderError,
        match=re.escape("config.databasePoolMin (12) is greater than config.databasePoolMax (10)"),
    ):
        render_env("existing-secret", {"config": {"databasePoolMin": 12}})


def test_existing_secret_and_external_secrets_are_exclusive() -> None:
    with pytest.raises(
        RenderError, match=re.escape("existingSecret and externalSecrets.enabled are exclusive")
    ):
        render_env("autoscaled", {"existingSecret": "creds"})


def test_external_secrets_without_data_is_refused() -> None:
    with pytest.raises(
        RenderError, match=re.escape("requires at least one externalSecrets.data entry")
    ):
        render_env("autoscaled", {"externalSecrets": {"data": []}})


def test_defaults_render_one_pod_on_sqlite_without_database_jobs() -> None:
    from tests.chart.support import render

    rendered = render()
    assert rendered.one("Deployment")["spec"]["replicas"] == 1
    assert not rendered.all("Job")
    assert not rendered.all("CronJob")
    assert "DATABASE_URL" not in rendered.one("ConfigMap")["data"]
