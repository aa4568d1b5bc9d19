"""`python -m tools.drill [--env-file .local/env] [--keep]`: the drill against the
local environment. Human lines first, then one JSON line (also on failure); exit 1 on any
mismatch or error."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import psycopg
from agent_service.dr.errors import DrError

from tools.drill.run import run_drill
from tools.drill.target import local_target


def _summary(report: dict[str, Any]) -> list[str]:
    return [
        f"dr-drill: {report['users']} users, {report['threads']} threads, "
        f"{report['checkpoints']} checkpoints, {report['store_items']} store items",
        f"dr-drill: backup {report['backup_key']} ({report['backup_bytes']} bytes)",
        f"dr-drill: RPO {report['rpo_seconds']:.1f} s (age of the newest restorable backup)",
        f"dr-drill: RTO {report['rto_seconds']:.1f} s (restore start to /ready 200; "
        f"restore alone {report['restore_seconds']:.1f} s)",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.drill")
    parser.add_argument("--env-file", default=".local/env", help="the environment under drill")
    parser.add_argument("--keep", action="store_true", help="keep the restored database")
    args = parser.parse_args(argv)
    env_file = Path(args.env_file)
    try:
        target = local_target(env_file)
        work_dir = env_file.resolve().parent / "logs"
        work_dir.mkdir(parents=True, exist_ok=True)
        report = run_drill(target, work_dir, keep=args.keep)
    except (DrError, psycopg.Error, httpx.HTTPError, OSError) as exc:
        print(f"dr-drill failed: {exc}", file=sys.stderr)
        print(json.dumps({"drill": "error", "error": str(exc)}))
        return 1
    for line in _summary(report):
        print(line)
    for mismatch in report["mismatches"]:
        print(f"dr-drill: MISMATCH {mismatch}", file=sys.stderr)
    print(json.dumps(report))
    return 0 if report["drill"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
