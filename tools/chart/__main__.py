"""`python -m tools.chart --write` regenerates the chart's derived files; `--check` lists the
stale ones and exits 1."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from tools.chart import CHART_DIR, settings_doc, values_doc
from tools.kit.programs import REPO_ROOT

REGENERATE = "make generate"

# In order: the README's table is read from the values.yaml written before it.
Generator = tuple[Path, Callable[[str], str]]


def _readme(text: str) -> str:
    return values_doc.readme_with_table(text, values_doc.parameters())


GENERATED: tuple[Generator, ...] = (
    (settings_doc.VALUES_PATH, settings_doc.values_with_block),
    (settings_doc.SCHEMA_PATH, settings_doc.schema_with_config),
    (settings_doc.DOC_PATH, settings_doc.doc_with_table),
    (CHART_DIR / "README.md", _readme),
)


def stale() -> list[str]:
    """The generated files that differ from what the generators make of the sources now."""
    found: list[str] = []
    for path, generate in GENERATED:
        text = path.read_text()
        if generate(text) != text:
            found.append(str(path.relative_to(REPO_ROOT)))
    return found


def write() -> list[str]:
    written: list[str] = []
    for path, generate in GENERATED:
        text = path.read_text()
        updated = generate(text)
        if updated != text:
            path.write_text(updated)
            written.append(str(path.relative_to(REPO_ROOT)))
    return written


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        for name in write():
            print(f"generated {name}")
        return 0
    if argv == ["--check"]:
        names = stale()
        for name in names:
            print(f"{name} is stale: run `{REGENERATE}`", file=sys.stderr)
        return 1 if names else 0
    print("usage: python -m tools.chart --write | --check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
