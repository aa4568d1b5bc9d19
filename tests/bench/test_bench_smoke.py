"""`make bench` run tiny: every server starts, every cell is measured, the outputs have their
shape. No figure is asserted: speed is what the benchmark reports, not what a test decides."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tools.kit.programs import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_benchmark_runs_tiny(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.bench",
            "--quick",
            "--out",
            str(tmp_path),
            "--docs",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    targets = {row["target"] for row in results["throughput"]}
    assert targets == {
        "langgraph dev (inmem)",
        "this service, SQLite",
        "this service, PostgreSQL",
        "this service, PostgreSQL + Redis",
    }
    cells = {(r["graph"], r["mode"], r["concurrency"]) for r in results["throughput"]}
    assert len(cells) == 2 * 2 * len(results["plan"]["concurrencies"])
    assert all(row["rps_vs_peer"] is not None for row in results["throughput"])
    assert all(row["errors"] == 0 for row in results["throughput"]), [
        (r["target"], r["graph"], r["mode"], r["errors"])
        for r in results["throughput"]
        if r["errors"]
    ]
    assert {r["durability"] for r in results["durability"]} == {"sync", "async", "exit"}
    assert set(results["checkpoints"]) == {"concurrency_1", "concurrency_32"}
    assert {p["target"] for p in results["processes"]} == targets
    assert len(results["targets"]) == 5
    assert {r["target"] for r in results["background"]} == targets
    assert all(r["errors"] == 0 and r["runs_per_s"] > 0 for r in results["background"]), results[
        "background"
    ]
    page = (tmp_path / "benchmarks.md").read_text()
    assert "| server | graph | mode | clients | req/s | x peer |" in page
    assert "| server | graph | join p50 ms | join p99 ms |" in page
    assert (tmp_path / "benchmarks-throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
