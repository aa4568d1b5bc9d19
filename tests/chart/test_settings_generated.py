"""One settings model: the service's `Settings` is the only place a setting's name, type,
bounds, default and doc line are written; the chart's values, their schema, the chart's
environment and the interface doc are generated from it (`make generate`) and agree with it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import annotated_types
import pytest
import yaml
from agent_service.settings import Settings, TuningSettings

from tests.chart.support import Rendered, render
from tools.chart import __main__ as generate
from tools.chart import settings_doc
from tools.chart.settings_doc import Setting, settings

SETTINGS = settings()
IN_VALUES = [s for s in SETTINGS if s.in_values]
# annotated-types bound -> (its attribute, the JSON-schema keyword)
_BOUNDS: dict[type, tuple[str, str]] = {
    annotated_types.Ge: ("ge", "minimum"),
    annotated_types.Gt: ("gt", "exclusiveMinimum"),
    annotated_types.Le: ("le", "maximum"),
    annotated_types.Lt: ("lt", "exclusiveMaximum"),
}
_KEYWORDS = [keyword for _, keyword in _BOUNDS.values()]
_TYPES = {
    int: "integer",
    float: "number",
    bool: "boolean",
    str: "string",
    dict: "object",
    list: "array",
}


def _model_bounds(setting: Setting) -> dict[str, Any]:
    """The bounds as the pydantic field declares them, read without the generator."""
    found: dict[str, Any] = {}
    for item in setting.field.metadata:
        for kind, (attribute, keyword) in _BOUNDS.items():
            if isinstance(item, kind):
                found[keyword] = getattr(item, attribute)
    return found


def _model_type(setting: Setting) -> str:
    """The JSON type of the field's annotation (Optional and Annotated unwrapped)."""
    annotation: Any = setting.field.annotation
    args = getattr(annotation, "__args__", ())
    if type(None) in args:
        (annotation,) = [a for a in args if a is not type(None)]
    annotation = getattr(annotation, "__origin__", annotation)  # Annotated[str, ...] -> str
    return _TYPES.get(annotation, "string")


def test_generated_files_are_current() -> None:
    stale = generate.stale()
    assert stale == [], f"stale generated files {stale}: run `{generate.REGENERATE}`"


def test_a_stale_file_is_detected() -> None:
    """Editing a generated bound by hand (instead of in settings.py) is caught."""
    text = settings_doc.SCHEMA_PATH.read_text()
    schema = json.loads(text)
    schema["properties"]["config"]["properties"]["requestTimeoutSeconds"]["maximum"] = 1e9
    edited = json.dumps(schema, indent=2) + "\n"
    assert settings_doc.schema_with_config(edited) == settings_doc.schema_with_config(text)
    assert settings_doc.schema_with_config(edited) != edited


def test_check_fails_naming_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "stale.md"
    stale.write_text("old\n")
    monkeypatch.setattr(generate, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(generate, "GENERATED", ((stale, lambda text: "new\n"),))
    assert generate.main(["--check"]) == 1
    assert "stale.md is stale: run `make generate`" in capsys.readouterr().err
    assert generate.main(["--write"]) == 0
    assert stale.read_text() == "new\n"
    assert generate.main(["--check"]) == 0
    assert generate.main(["--nonsense"]) == 2


def test_every_setting_has_a_doc_line_and_a_place() -> None:
    assert len(SETTINGS) == len(Settings.model_fields) >= 40
    for s in SETTINGS:
        assert s.description, s.name
        placed = [
            s.in_values,
            s.secret,
            s.name in settings_doc.FIXED_BY_CHART,
            s.name in settings_doc.LEFT_TO_SERVICE,
        ]
        assert placed.count(True) == 1, s.name
    assert set(settings_doc.CHART_NOTES) <= {s.name for s in IN_VALUES}


@pytest.mark.parametrize("setting", IN_VALUES, ids=lambda s: s.name)
def test_schema_values_and_doc_agree_with_the_model(setting: Setting) -> None:
    schema = json.loads(settings_doc.SCHEMA_PATH.read_text())["properties"]["config"]
    entry = schema["properties"][setting.key]
    types = entry["type"] if isinstance(entry["type"], list) else [entry["type"]]
    assert _model_type(setting) in types
    bounds = _model_bounds(setting)
    assert {k: entry[k] for k in _KEYWORDS if k in entry} == bounds
    values = yaml.safe_load(settings_doc.VALUES_PATH.read_text())["config"]
    default = setting.field.get_default(call_default_factory=True)
    assert values[setting.key] == ("" if default is None and "null" not in types else default)
    (row,) = [
        line
        for line in settings_doc.DOC_PATH.read_text().splitlines()
        if line.startswith(f"| `{setting.env}` |")
    ]
    assert f"`config.{setting.key}`" in row
    if setting.name in TuningSettings.model_fields:
        assert f"`release.settings.{setting.key}`" in row
    for value in bounds.values():
        assert f" {value}" in row, (setting.name, row)
    assert _model_type(setting) in row


def test_schema_has_exactly_the_settings_in_values() -> None:
    schema = json.loads(settings_doc.SCHEMA_PATH.read_text())["properties"]["config"]
    assert set(schema["properties"]) == {s.key for s in IN_VALUES}
    assert schema["additionalProperties"] is False


@pytest.mark.helm
def test_the_chart_derives_each_variable_from_its_key() -> None:
    """With a value for every key, the ConfigMap holds each setting under the service's name
    for it (sprig's `snakecase | upper` of the camelCase key), plus the three fixed ones."""
    samples: dict[str, Any] = {
        "storeItemTtlDays": 30,
        "storeEmbeddings": "openai:text-embedding-3-small",
        "storeEmbeddingDims": 1536,
        "webhookAllowedHosts": "hooks.example.com",
        "backupBucket": "agent-backups",
        "backupKmsKeyId": "alias/agent-backups",
        "awsRegion": "eu-west-1",
        "databaseUrl": "postgresql://agent@db:5432/agent",
        "redisUrl": "redis://cache:6379/0",
        "corsOrigins": "https://a.example",
        "adminPrincipals": "ops",
        "principalRoles": {"ops": ["approver"]},
        "principalGraphs": {"ops": ["main_agent"]},
        "otelExporterOtlpEndpoint": "http://otel-collector.monitoring:4317",
    }
    # The database URL brings the PostgreSQL jobs; keep the chart's own rules satisfied.
    rendered: Rendered = render(
        overrides={
            "config": samples,
            "networkPolicy": {
                "egress": {
                    "postgres": {"cidrs": ["10.0.0.0/16"]},
                    "redis": {"cidrs": ["10.0.0.0/16"]},
                }
            },
            "backup": {"enabled": False},
        }
    )
    data = rendered.one("ConfigMap")["data"]
    expected = {s.env for s in IN_VALUES} | {name.upper() for name in settings_doc.FIXED_BY_CHART}
    assert set(data) == expected


def test_importing_the_settings_loads_no_service_runtime() -> None:
    """The Pulumi program imports the model: it must not pull in the service's dependencies."""
    code = (
        "import sys, agent_service.settings, tools.chart.settings_doc, infra.config\n"
        "heavy = {'langgraph', 'fastapi', 'psycopg', 'langchain_core', 'redis', 'uvicorn'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
