"""`python -m tools.bench [--quick] [--out DIR] [--docs DIR]` (what `make bench` runs)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tools.bench import report
from tools.bench.run import QUICK, Plan, run
from tools.kit.programs import REPO_ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench")
    parser.add_argument("--quick", action="store_true", help="a tiny run (the smoke test's)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "bench")
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else Plan()
    args.out.mkdir(parents=True, exist_ok=True)
    args.docs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        results = run(plan, Path(work))
    results["machine"] = report.machine()
    results["throughput"] = report.with_ratios(results["throughput"])
    results["durability"] = report.with_ratios(results["durability"])
    results["targets"] = report.targets(results)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    command = "make bench" if not args.quick else "python -m tools.bench --quick"
    (args.docs / "benchmarks.md").write_text(report.markdown(results, command))
    report.plot(results, args.docs / "benchmarks-throughput.png")
    for target in results["targets"]:
        verdict = "met" if target["met"] else "missed"
        print(f"bench: {target['target']}: {target['measured']} ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
