"""The chart's generated files: its README's parameters table (from values.yaml's comments),
and everything derived from the service's settings model (the `config` block of values.yaml,
its part of values.schema.json, the settings table of docs/service-interface.md).
`python -m tools.chart --write` (`make generate`) rewrites them; `--check` lists stale ones."""

from __future__ import annotations

from tools.kit.programs import REPO_ROOT

CHART_DIR = REPO_ROOT / "charts" / "langgraph-agent"
