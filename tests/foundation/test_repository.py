"""The repository's contract with its users: layout, Pulumi project, stacks, README, CI."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.kit.programs import REPO_ROOT

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
        "tools/kit",
        "tools/local",
        "tools/plan",
        "tools/drill",
        "tools/bench",
        "tools/deploy",
        "tools/install/install-tools.sh",
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


# What `pulumi up` loads, and nothing else: the tools behind the make verbs live in tools/.
INFRA_MODULES = {
    "__init__",
    "__main__",
    "program",
    "config",
    "release_values",
    "network",
    "cluster",
    "database",
    "database_logins",
    "cache",
    "ecr",
    "image",
    "backups",
    "identity",
    "addons",
    "edge",
    "release",
    "iam",
    "kms",
    "tags",
}


def _imports(path: Path, *, at_import_only: bool = False) -> set[str]:
    """The names of the modules `path` imports (absolute imports only); `at_import_only`:
    just those its body runs on import, not the ones inside functions."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body if at_import_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _python_files(*roots: str) -> list[Path]:
    return [
        path
        for root in roots
        for path in sorted((REPO_ROOT / root).rglob("*.py"))
        if "__pycache__" not in path.parts
    ]


def test_infra_is_only_the_pulumi_program() -> None:
    infra = REPO_ROOT / "infra"
    assert not [p.name for p in infra.iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert {p.stem for p in infra.glob("*.py")} == INFRA_MODULES


@pytest.mark.parametrize(
    ("roots", "forbidden"),
    [
        (("infra",), ("tools", "tests", "policies")),
        (("app", "policies"), ("tools", "tests")),
        (("tools",), ("tests",)),
    ],
)
def test_imports_only_point_downwards(roots: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    wrong = [
        f"{path.relative_to(REPO_ROOT)}: {name}"
        for path in _python_files(*roots)
        for name in _imports(path)
        if name.split(".")[0] in forbidden
    ]
    assert wrong == []


def _normalised(distribution: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _modules_infra_loads() -> list[Path]:
    """infra/'s files, and the service modules they import (the settings model), transitively:
    the project package ships with the program, its imports must be in the group too."""
    files, seen = list(_python_files("infra")), set()
    for path in files:
        for name in _imports(path, at_import_only=path.is_relative_to(REPO_ROOT / "app")):
            if name.split(".")[0] != "agent_service" or name in seen:
                continue
            seen.add(name)
            module = REPO_ROOT / "app" / Path(*name.split("."))
            files += [f for f in (module.with_suffix(".py"), module / "__init__.py") if f.is_file()]
    return files


def test_the_infra_dependency_group_is_exactly_what_infra_imports() -> None:
    """`uv sync --only-group infra` is enough for `pulumi up`, and holds nothing else."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    declared = {
        _normalised(re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0])
        for requirement in project["dependency-groups"]["infra"]
    }
    distributions = metadata.packages_distributions()
    imported = {
        _normalised(distribution)
        for path in _modules_infra_loads()
        # A service module's function-level imports (psycopg in the settings' helpers) are
        # not loaded by the program.
        for name in _imports(path, at_import_only=path.is_relative_to(REPO_ROOT / "app"))
        if name.split(".")[0] not in sys.stdlib_module_names | {"infra", "agent_service"}
        for distribution in distributions.get(name.split(".")[0], [name.split(".")[0]])
    }
    assert imported == declared


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
