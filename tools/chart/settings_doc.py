"""Everything derived from the service's settings model (agent_service.settings): the chart's
`config` values block, its part of values.schema.json, and the settings table of
docs/service-interface.md.

Each setting is one values key, the field's name in camelCase; the chart turns the key back
into the variable's name (`snakecase | upper` in templates/_helpers.tpl). Secrets never become
values (they are files, see externalSecrets.data), and a few settings are fixed by the chart or
left to the service on purpose (below, with the reason).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_service.settings import DEFAULT_SECRETS_DIR, Settings, TuningSettings
from pydantic import SecretStr
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from tools.chart import CHART_DIR
from tools.kit.programs import REPO_ROOT

VALUES_PATH = CHART_DIR / "values.yaml"
SCHEMA_PATH = CHART_DIR / "values.schema.json"
DOC_PATH = REPO_ROOT / "docs" / "service-interface.md"
DOC_BEGIN = "<!-- settings:begin (generated from settings.py by `make generate`) -->"
DOC_END = "<!-- settings:end -->"
VALUES_SECTION = "config"
VALUES_HEADER = (
    "# The service's non-secret settings, rendered into a ConfigMap and passed as environment\n"
    "# variables: each key in UPPER_SNAKE_CASE is the variable's name. An empty string or null\n"
    "# leaves the variable unset so the service's default applies. Generated from\n"
    "# app/agent_service/settings.py by `make generate`: change a setting there, not here.\n"
)

# Set by the chart itself (templates/_helpers.tpl), not from values.
FIXED_BY_CHART = {
    "host": "the pod's address",
    "port": "the container port the probes and the Service use",
    "metrics_port": "the container port Prometheus scrapes, which the Ingress never routes",
    "secrets_dir": "where the chart mounts the secret files",
}
# Settings the chart deliberately leaves to the service, and why.
LEFT_TO_SERVICE = {
    "sqlite_path": "the image points it into /tmp, the pod's only writable path",
    "s3_endpoint_url": "an S3-compatible endpoint is for local runs and tests, not AWS",
    "pg_bin_dir": "the image has pg_dump and pg_restore on PATH",
    "prometheus_multiproc_dir": "the service picks its /tmp directory itself when WORKERS > 1",
}
# What a values comment says beyond the setting's doc line: how the chart uses the value.
CHART_NOTES = {
    "database_url": "The Pulumi program adds `sslmode=verify-full&sslrootcert=<CA bundle in the "
    "image>`. Empty means the embedded SQLite database, which belongs to one pod: then "
    "replicaCount must be 1, autoscaling and the canary off, and the migration, backup and "
    "retention jobs are not rendered.",
    "backup_bucket": "Required when backup.enabled.",
    "shutdown_grace_seconds": "The pod's grace period must exceed preStopSleepSeconds + this + "
    "5 s, and this must be at least requestTimeoutSeconds (a drain that cancels runs the "
    "request timeout would have let finish), which the chart checks.",
    "metrics_require_auth": "A PodMonitor cannot send that header, so the chart refuses "
    "this together with monitoring.enabled.",
}


@dataclass(frozen=True)
class Setting:
    """One field of the settings model, as every derived file names and bounds it."""

    name: str
    field: FieldInfo
    schema: dict[str, Any]  # pydantic's JSON schema of the field

    @property
    def env(self) -> str:
        return self.name.upper()

    @property
    def key(self) -> str:
        return to_camel(self.name)

    @property
    def secret(self) -> bool:
        # SecretStr, SecretStr | None, dict[str, SecretStr]...
        return SecretStr.__name__ in str(self.field.annotation)

    @property
    def in_values(self) -> bool:
        return not (self.secret or self.name in FIXED_BY_CHART or self.name in LEFT_TO_SERVICE)

    @property
    def optional(self) -> bool:
        return any(option.get("type") == "null" for option in self.schema.get("anyOf", []))

    @property
    def description(self) -> str:
        return str(self.field.description)


def settings() -> list[Setting]:
    properties = Settings.model_json_schema()["properties"]
    missing = [name for name, field in Settings.model_fields.items() if not field.description]
    if missing:
        raise ValueError(f"settings without a description (Field(description=...)): {missing}")
    return [Setting(name, field, properties[name]) for name, field in Settings.model_fields.items()]


def value_schema(setting: Setting) -> dict[str, Any]:
    """The values key's JSON schema: the field's, with the chart's empty string (or null) for
    an unset optional setting."""
    schema = {k: v for k, v in setting.schema.items() if k not in ("title", "default")}
    options = schema.pop("anyOf", None)
    if options is not None:
        (inner,) = [option for option in options if option.get("type") != "null"]
        schema = {**inner, **schema}
        if schema["type"] == "string":
            # "" is the chart's "unset".
            if "pattern" in schema:
                schema["pattern"] = f"^$|{schema['pattern']}"
        else:
            schema["type"] = [schema["type"], "null"]
    schema.pop("format", None)
    ordered = {"type": schema.pop("type")}
    ordered.update(sorted(schema.items()))
    return ordered


def config_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {s.key: value_schema(s) for s in settings() if s.in_values},
    }


def value_default(setting: Setting) -> Any:
    default = setting.field.get_default(call_default_factory=True)
    if default is None:
        return None if "null" in value_schema(setting)["type"] else ""
    if isinstance(default, float) and default.is_integer():
        return int(default)
    if isinstance(default, Path):
        return str(default)
    return default


def _comment(text: str, indent: str, width: int = 100) -> list[str]:
    lines: list[str] = []
    line = f"{indent}#"
    for word in text.split():
        if len(line) + 1 + len(word) > width and line != f"{indent}#":
            lines.append(line)
            line = f"{indent}#"
        line += f" {word}"
    lines.append(line)
    return lines


def values_block() -> str:
    """The `config:` block of values.yaml, its header comment included."""
    lines = [VALUES_HEADER.rstrip("\n"), f"{VALUES_SECTION}:"]
    for s in settings():
        if not s.in_values:
            continue
        text = f"{s.description} ({s.env})."
        if s.name in CHART_NOTES:
            text += " " + CHART_NOTES[s.name]
        lines += _comment(text, "  ")
        lines.append(f"  {s.key}: {json.dumps(value_default(s))}")
    return "\n".join(lines) + "\n"


def _block_span(text: str) -> tuple[int, int]:
    """Start and end offsets of the config block (its header comment through its last key)."""
    lines = text.splitlines(keepends=True)
    (at,) = [i for i, line in enumerate(lines) if line == f"{VALUES_SECTION}:\n"]
    start = at
    while start > 0 and lines[start - 1].startswith("#"):
        start -= 1
    end = at + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    offset = [0]
    for line in lines:
        offset.append(offset[-1] + len(line))
    return offset[start], offset[end]


def values_with_block(text: str) -> str:
    start, end = _block_span(text)
    return text[:start] + values_block() + text[end:]


def schema_with_config(text: str) -> str:
    schema = json.loads(text)
    schema["properties"][VALUES_SECTION] = config_schema()
    return json.dumps(schema, indent=2) + "\n"


def _doc_default(s: Setting) -> str:
    default = s.field.get_default(call_default_factory=True)
    if s.name == "secrets_dir":
        default = DEFAULT_SECRETS_DIR
    if default is None or default == {}:
        return "unset"
    if default == "":
        return "empty"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"`{default}`"


def _doc_bounds(s: Setting) -> str:
    schema = value_schema(s)
    parts = []
    if "enum" in schema:
        parts.append(" / ".join(f"`{v}`" for v in schema["enum"]))
    for key, sign in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
    ):
        if key in schema:
            parts.append(f"{sign} {schema[key]}")
    return ", ".join(parts)


def _doc_type(s: Setting) -> str:
    if s.secret:
        return "secret"
    types = value_schema(s)["type"]
    return " or ".join(types) if isinstance(types, list) else str(types)


def doc_table() -> str:
    rows = [
        "| variable | chart value | stack key | secret file | type | bounds | default | meaning |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in settings():
        if s.in_values:
            where = f"`config.{s.key}`"
        elif s.name in FIXED_BY_CHART:
            where = f"fixed: {FIXED_BY_CHART[s.name]}"
        elif s.name in LEFT_TO_SERVICE:
            where = f"none: {LEFT_TO_SERVICE[s.name]}"
        else:
            where = "none: a secret file (`externalSecrets.data`)"
        secret_file = f"`{s.name}`" if s.secret else ""
        # A stack file tunes these (infra/config.py); the Pulumi program wires the rest.
        stack = f"`release.settings.{s.key}`" if s.name in TuningSettings.model_fields else ""
        meaning = s.description.replace("|", "\\|")
        rows.append(
            f"| `{s.env}` | {where} | {stack} | {secret_file} | {_doc_type(s)} | "
            f"{_doc_bounds(s)} | {_doc_default(s)} | {meaning} |"
        )
    return "\n".join(rows)


def doc_with_table(text: str) -> str:
    start, end = text.index(DOC_BEGIN), text.index(DOC_END)
    return text[: start + len(DOC_BEGIN)] + "\n\n" + doc_table() + "\n\n" + text[end:]
