"""The service's packages import one way: read every module's imports (ast, nothing is
executed) and fail on a package-level cycle or on an import up the layer order."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import agent_service
import pytest
from agent_service.api.errors import RUN_ERRORS
from agent_service.cli import COMMANDS
from agent_service.runs import errors as run_errors

PACKAGE = Path(agent_service.__file__).parent
ROOT = "agent_service"

# Top to bottom. A package may import only packages of a lower layer.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"cli"}),
    frozenset({"commands"}),
    frozenset({"server"}),
    frozenset({"api"}),
    frozenset({"crons"}),
    frozenset({"runs", "dr"}),
    frozenset({"graphs"}),
    frozenset({"guardrails"}),
    frozenset({"llm", "persistence", "auth"}),
    frozenset({"core", "embeddings"}),
    frozenset({"settings", "metrics"}),
)
RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}


def _unit(path: Path) -> str:
    """The package (or top-level module) a file belongs to."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _module_name(path: Path) -> list[str]:
    parts = [ROOT, *path.relative_to(PACKAGE).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imported(path: Path) -> Iterator[str]:
    """Every agent_service module a file imports: import statements (absolute and relative)
    and `importlib.import_module("...")` with a literal name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            yield module
            # `from agent_service import settings` imports a unit by its name.
            yield from (f"{module}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value


def _units_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != ROOT or len(parts) < 2:
        return None
    candidate = parts[1]
    return (
        candidate
        if (PACKAGE / candidate).is_dir() or (PACKAGE / f"{candidate}.py").is_file()
        else None
    )


def package_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":
            continue
        unit = _unit(path)
        targets = edges.setdefault(unit, set())
        for module in _imported(path):
            target = _units_of(module)
            if target is not None and target != unit:
                targets.add(target)
    # The CLI imports each command's module by the name in its table.
    edges["cli"].update(filter(None, (_units_of(module) for module, _ in COMMANDS.values())))
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_find_cycle_sees_a_loop() -> None:
    # The check itself must be able to fail.
    assert find_cycle({"api": {"server"}, "server": {"core", "api"}}) == ["api", "server", "api"]
    assert find_cycle({"server": {"api"}, "api": {"core"}}) is None


def test_the_graph_sees_real_imports() -> None:
    edges = package_graph()
    assert "api" in edges["server"]
    assert "core" in edges["persistence"]
    assert "commands" in edges["cli"]  # named in the command table


def test_no_package_import_cycle() -> None:
    assert find_cycle(package_graph()) is None


def test_every_unit_has_a_layer() -> None:
    assert set(package_graph()) - set(RANK) == set()


@pytest.mark.parametrize("unit", sorted(RANK))
def test_imports_only_go_down(unit: str) -> None:
    upward = {target for target in package_graph().get(unit, set()) if RANK[target] <= RANK[unit]}
    assert upward == set(), f"{unit} imports {sorted(upward)} from its own layer or above"


def test_every_run_error_has_an_http_answer() -> None:
    domain = {
        value
        for value in vars(run_errors).values()
        if isinstance(value, type)
        and issubclass(value, run_errors.RunError)
        and value is not run_errors.RunError
    }
    assert domain == set(RUN_ERRORS)
