"""`python -m tools.bench [--quick] [--repetitions N] [--out DIR] [--docs DIR]` (what
`make bench` runs). The full plan takes about 25 minutes on 2 cores; `--repetitions 1` about
12; `--quick` (the smoke test's) about 3."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from tools.bench import report
from tools.bench.run import QUICK, Plan, run
from tools.kit.programs import REPO_ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench")
    parser.add_argument("--quick", action="store_true", help="a tiny run (the smoke test's)")
    parser.add_argument(
        "--repetitions", type=int, default=None, help="repetitions per cell (median kept)"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="an earlier results.json: the page gets a before/after section",
    )
    parser.add_argument(
        "--baseline-label", default=None, help="what the baseline was (shown on the page)"
    )
    parser.add_argument("--note", default=None, help="a line under Method (e.g. shared machine)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "bench")
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else Plan()
    if args.repetitions is not None:
        plan = replace(plan, repetitions=max(1, args.repetitions))
    args.out.mkdir(parents=True, exist_ok=True)
    args.docs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        results = run(plan, Path(work), args.out)
    results["machine"] = report.machine()
    if args.note:
        results["note"] = args.note
    results["throughput"] = report.with_limit(
        report.with_ratios(results["throughput"]), results["inprocess"]
    )
    results["durability"] = report.with_ratios(results["durability"])
    results["targets"] = report.targets(results)
    if args.baseline is not None:
        baseline = json.loads(args.baseline.read_text())
        baseline["label"] = args.baseline_label or str(args.baseline.name)
        results["baseline"] = {
            key: baseline.get(key) for key in ("label", "throughput", "db_work", "inprocess")
        }
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    command = "make bench" if not args.quick else "python -m tools.bench --quick"
    if args.repetitions is not None and not args.quick:
        command = f"python -m tools.bench --repetitions {plan.repetitions}"
    (args.docs / "benchmarks.md").write_text(report.markdown(results, command))
    report.plot(results, args.docs / "benchmarks-throughput.png")
    for target in results["targets"]:
        verdict = "met" if target["met"] else "missed"
        print(f"bench: {target['target']}: {target['measured']} ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
