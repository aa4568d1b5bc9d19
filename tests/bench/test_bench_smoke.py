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
        "this service, PostgreSQL, 2 workers",
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
    assert all(row["server_cpu_ms"] is not None for row in results["throughput"])
    assert all(
        row["share_of_limit"] is not None
        for row in results["throughput"]
        if row["target"] != "langgraph dev (inmem)"
    )
    limit = {(r["saver"], r["graph"], r["mode"]) for r in results["inprocess"]}
    assert len(limit) == 2 * 2 * 2
    assert all(r["errors"] == 0 and r["rps"] > 0 for r in results["inprocess"])
    work = {(r["target"], r["graph"]): r for r in results["db_work"]}
    assert set(work) == {
        (target, graph)
        for target in ("in-process, PostgreSQL", "this service, PostgreSQL")
        for graph in ("main_agent", "one_node")
    }
    # Every turn writes at least its input checkpoint, in at least one transaction.
    assert all(r["checkpoints_per_turn"] >= 1 for r in work.values())
    assert all(r["transactions_per_turn"] >= 1 for r in work.values())
    assert results["profile"]["svg"], results["profile"]
    assert {r["layer"] for r in results["http_path"]["layers"]} >= {"CORS", "body limit"}
    assert results["http_path"]["reply_json"]["json_bytes_us"] > 0
    assert (tmp_path / results["profile"]["svg"]).read_bytes().lstrip().startswith(b"<?xml")
    assert {r["target"] for r in results["background"]} == targets - {
        "this service, PostgreSQL, 2 workers"
    }
    assert all(r["errors"] == 0 and r["runs_per_s"] > 0 for r in results["background"]), results[
        "background"
    ]
    targets_named = {t["target"] for t in results["targets"]}
    assert "transactions per main_agent turn <= supersteps + 3" in targets_named
    assert "WORKERS=2 >= 1.6x one worker" in targets_named
    page = (tmp_path / "benchmarks.md").read_text()
    assert "| server | graph | mode | clients | req/s | x peer | share of limit |" in page
    assert "## Database work per turn" in page
    assert "| server | graph | join p50 ms | join p99 ms |" in page
    assert (tmp_path / "benchmarks-throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
