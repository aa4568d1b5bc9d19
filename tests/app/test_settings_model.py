"""The settings model is the only reader of the service's settings: no module reads them from
os.environ, the graphs get their group from the settings, and the variables the interface doc
lists (SECRETS_DIR, PG_BIN_DIR, PROMETHEUS_MULTIPROC_DIR) are settings like the others."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from agent_service.graphs.source import registry_graph_source
from agent_service.settings import GraphOptions, Settings, load_settings

APP_DIR = Path(__file__).resolve().parents[2] / "app" / "agent_service"
# Modules that touch os.environ, and why that is not reading a setting.
ENVIRON_WRITERS = {
    "server/serve.py": "passes the metrics directory on to uvicorn's workers",
    "commands/serve.py": "passes the command line's overrides on to uvicorn's workers",
    "dr/postgres.py": "builds pg_dump's / pg_restore's environment (PGPASSWORD)",
    "dr/drill/target.py": "builds the drilled service's environment",
    "server/tracing.py": "hands the LangSmith key (a secret file) to LangChain's tracer",
}


def _environ_users(root: Path = APP_DIR) -> set[str]:
    found: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}:
                found.add(str(path.relative_to(root)))
    return found


def test_only_known_modules_touch_the_environment() -> None:
    assert _environ_users() <= set(ENVIRON_WRITERS)
    assert "graphs/served.py" not in _environ_users()
    assert "settings.py" not in _environ_users()


def test_the_scan_finds_a_reader(tmp_path: Path) -> None:
    (tmp_path / "graphs").mkdir()
    (tmp_path / "graphs" / "served.py").write_text("import os\nk = os.environ.get('MODEL')\n")
    (tmp_path / "quiet.py").write_text("from os import path\n")
    assert _environ_users(tmp_path) == {"graphs/served.py"}


def test_the_graphs_get_their_group_of_the_settings() -> None:
    settings = Settings(research_max_tasks=3, summarize_after_messages=12)
    source = registry_graph_source(settings)
    options = source.build.keywords["options"]  # type: ignore[attr-defined]
    assert isinstance(options, GraphOptions)
    assert (options.research_max_tasks, options.summarize_after_messages) == (3, 12)
    assert set(GraphOptions.model_fields) <= set(Settings.model_fields)


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_secrets_dir_pg_bin_dir_and_metrics_dir_are_settings(
    clean: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "model_api_key").write_text("sk-from-a-file-0123\n")
    clean.setenv("SECRETS_DIR", str(tmp_path))
    clean.setenv("PG_BIN_DIR", "/usr/lib/postgresql/15/bin")
    clean.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    settings = load_settings()
    assert settings.secrets_dir == tmp_path
    assert settings.model_api_key is not None
    assert settings.model_api_key.get_secret_value() == "sk-from-a-file-0123"
    assert settings.pg_bin_dir == Path("/usr/lib/postgresql/15/bin")
    assert settings.prometheus_multiproc_dir is None  # empty means unset


def test_log_level_critical_and_fractional_timeouts(clean: pytest.MonkeyPatch) -> None:
    clean.setenv("LOG_LEVEL", "critical")
    clean.setenv("REQUEST_TIMEOUT_SECONDS", "0.5")
    settings = load_settings()
    assert (settings.log_level, settings.request_timeout_seconds) == ("CRITICAL", 0.5)
