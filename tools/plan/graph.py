"""Step 5: a picture of the stack: every resource, boxed by its component, with the dependency
edges Pulumi records, drawn by Graphviz `dot` into an SVG. Against another stack, the resources
only this stack has and those whose inputs differ are coloured (reviewers look before they read).
"""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from collections.abc import Collection, Mapping
from typing import Any

from tools.kit.programs import require_program
from tools.plan.cost import NO_COMPONENT, component_of
from tools.plan.diff import flatten, normalise
from tools.plan.offline import OfflineRun

ADDED = "#b7e4c7"  # only in this stack
CHANGED = "#ffd8a8"  # inputs differ from the other stack
SAME = "#ffffff"
DOT_TIMEOUT_S = 120


# Tags name the environment, and references (ARNs, IDs, generated name suffixes) differ
# between any two stacks: neither makes a resource "differ" in the picture.
IGNORED_ROOTS = frozenset({"tags", "tagsAll", "tagSpecifications", "defaultTags"})
_REFERENCE = re.compile(
    r"arn:aws[\w:/.*+=,@-]*"
    r"|\b[a-z]+-[0-9a-f]{8,17}\b"
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
    r"|-[0-9a-f]{6,7}\b"
    r"|\b[0-9a-f]{32}\b"
    r"|\.c[0-9a-f]{11}\.|\.[0-9a-f]{6}\.euw1\.",
    re.IGNORECASE,
)


class GraphError(RuntimeError):
    pass


def _comparable(value: Any, stack: str) -> Any:
    if isinstance(value, list):
        return [_comparable(item, stack) for item in value]
    if isinstance(value, dict):
        return {key: _comparable(item, stack) for key, item in value.items()}
    value = normalise(value, stack)
    return _REFERENCE.sub("<ref>", value) if isinstance(value, str) else value


def _material(run: OfflineRun) -> dict[str, dict[str, Any]]:
    return {
        resource_key(resource.type, resource.name, run.stack): {
            path: _comparable(value, run.stack)
            for path, value in flatten(resource.inputs).items()
            if path.split(".", 1)[0].split("[", 1)[0] not in IGNORED_ROOTS
        }
        for resource in run.resources
    }


def material_changes(base: OfflineRun, other: OfflineRun) -> set[str]:
    """Keys of the resources both stacks have whose inputs differ in substance: not in tags,
    not only in references to other resources."""
    left, right = _material(base), _material(other)
    return {key for key in set(left) & set(right) if left[key] != right[key]}


def _quote(text: str) -> str:
    """A DOT string. Backslashes are left alone: a backslash-n in a label breaks the line."""
    return '"' + text.replace('"', '\\"') + '"'


def resource_key(type_: str, name: str, stack: str) -> str:
    """The key the stack diff uses: type and name with the stack replaced by `<stack>`."""
    return f"{type_}::{normalise(name, stack)}"


def dot_source(
    run: OfflineRun,
    *,
    added: Collection[str] = (),
    changed: Collection[str] = (),
    costs: Mapping[str, float] | None = None,
    against: str | None = None,
) -> str:
    """The graph in the DOT language. `added`/`changed` hold diff keys (`resource_key`),
    `costs` monthly USD by URN (shown under a resource's name)."""
    components = component_of(run)
    drawn = [r for r in run.resources if r.custom and not r.type.startswith("pulumi:providers:")]
    ids = {resource.urn: f"r{index}" for index, resource in enumerate(drawn)}
    grouped: dict[str, list[str]] = defaultdict(list)
    for resource in drawn:
        key = resource_key(resource.type, resource.name, run.stack)
        fill = ADDED if key in added else CHANGED if key in changed else SAME
        kind = resource.type.rsplit(":", 1)[-1]
        label = f"{resource.name}\\n{kind}"
        cost = (costs or {}).get(resource.urn)
        if cost:
            label += f"\\n${cost:,.0f}/month"
        grouped[components.get(resource.urn, NO_COMPONENT)].append(
            f"    {ids[resource.urn]} [label={_quote(label)}, fillcolor={_quote(fill)}];"
        )
    title = f"stack {run.stack}"
    if against:
        title += f" against {against}: green only in {run.stack}, orange inputs differ"
    lines = [
        "digraph stack {",
        f"  label={_quote(title)}; labelloc=t; fontname=Helvetica; rankdir=LR;",
        "  compound=true; newrank=true; ranksep=0.6;",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=10];',
        '  edge [color="#888888", arrowsize=0.6];',
    ]
    for index, (component, nodes) in enumerate(sorted(grouped.items())):
        lines += [
            f"  subgraph cluster_{index} {{",
            f'    label={_quote(component)}; style=rounded; color="#4a6fa5"; fontsize=14;',
            *nodes,
            "  }",
        ]
    for resource in drawn:
        for dependency in sorted(set(resource.depends_on)):
            if dependency in ids and dependency != resource.urn:
                lines.append(f"  {ids[dependency]} -> {ids[resource.urn]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(source: str) -> str:
    """`dot -Tsvg` over the source (Graphviz from Debian, installed by `make tools`)."""
    dot = require_program("dot")
    completed = subprocess.run(  # noqa: S603 - a fixed program, the graph on stdin
        [dot, "-Tsvg"],
        input=source,
        capture_output=True,
        text=True,
        timeout=DOT_TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0:
        raise GraphError(f"dot failed ({completed.returncode}): {completed.stderr.strip()}")
    return completed.stdout
