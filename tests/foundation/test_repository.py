"""The repository's contract with its users: layout, Pulumi project, stacks, README, CI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.binaries import REPO_ROOT

STACKS = ("dev", "staging", "prod")
# Config keys whose values are credentials: they must be Pulumi secrets, never plain text.
SECRET_KEY = re.compile(r"(password|secret|token|api[_-]?key|private[_-]?key)", re.IGNORECASE)


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize(
    "entry",
    [
        "infra",
        "charts/langgraph-agent",
        "app/agent_service",
        "policies",
        "tests",
        "docs",
        "scripts",
        ".ci/run",
        "Makefile",
        "README.md",
        "pyproject.toml",
        "uv.lock",
        "Pulumi.yaml",
    ],
)
def test_top_level_layout(entry: str) -> None:
    assert (REPO_ROOT / entry).exists(), entry


def test_pulumi_project_runs_infra_with_uv() -> None:
    project = _load(REPO_ROOT / "Pulumi.yaml")
    assert project["name"] == "agent-platform"
    assert project["main"] == "infra/"
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["toolchain"] == "uv"


def _walk(config: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(config, dict):
        return [item for key, value in config.items() for item in _walk(value, f"{path}.{key}")]
    if isinstance(config, list):
        return [item for i, value in enumerate(config) for item in _walk(value, f"{path}[{i}]")]
    return [(path, config)]


@pytest.mark.parametrize("stack", STACKS)
def test_stack_file_holds_no_plaintext_secret(stack: str) -> None:
    config = _load(REPO_ROOT / f"Pulumi.{stack}.yaml").get("config", {})
    assert config, f"Pulumi.{stack}.yaml has no config"
    for key, value in config.items():
        if SECRET_KEY.search(key):
            assert isinstance(value, dict), f"{stack}: {key} is plain text"
            assert set(value) == {"secure"}, f"{stack}: {key} must be a Pulumi secret"
        for path, leaf in _walk(value, key):
            if SECRET_KEY.search(path.rsplit(".", 1)[-1]) and not path.endswith(".secure"):
                assert leaf in (None, "", False), f"{stack}: {path} is plain text"


def test_readme_quick_start_is_exactly_two_commands() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", section, re.DOTALL)
    commands = [line for block in blocks for line in block.splitlines() if line.strip()]
    assert commands == ["make up", "make test"]


def test_readme_has_an_architecture_diagram() -> None:
    assert "```mermaid" in (REPO_ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command() -> None:
    lines = [
        line.strip()
        for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "make test" in lines
