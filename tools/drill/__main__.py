"""`python -m tools.drill [--scenario dump|pitr|region-loss] [--env-file .local/env] [--keep]`:
a drill against the local environment. Human lines first, then one JSON line (also on
failure) with `scenario`, `rpo_seconds`, `rto_seconds` and the counts compared; exit 1 on any
mismatch or error. Each scenario rehearses the runbook its report names."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
from agent_service.dr.errors import DrError
from botocore.exceptions import BotoCoreError, ClientError

from tools.drill.pitr import Pitr, run_pitr
from tools.drill.region import run_region_loss
from tools.drill.run import run_drill
from tools.drill.target import Target, local_pitr, local_target

SCENARIOS = ("dump", "pitr", "region-loss")


def _counts(report: dict[str, Any]) -> str:
    return (
        f"{report['users']} users, {report['threads']} threads, "
        f"{report['checkpoints']} checkpoints, {report['store_items']} store items compared"
    )


def _summary(report: dict[str, Any]) -> list[str]:
    scenario = report["scenario"]
    lines = [
        f"dr-drill {scenario}: following {report['runbook']}",
        f"dr-drill {scenario}: {_counts(report)}",
    ]
    if scenario == "dump":
        lines += [
            f"dr-drill dump: backup {report['backup_key']} ({report['backup_bytes']} bytes)",
            f"dr-drill: RPO {report['rpo_seconds']:.1f} s (age of the newest restorable backup)",
        ]
    elif scenario == "pitr":
        lines += [
            f"dr-drill pitr: base backup {report['base_backup_key']}; bad migration deleted "
            f"{report['bad_migration_rows']} rows at {report['disaster_at']}",
            f"dr-drill pitr: target {report['target_time']}, recovered until "
            f"{report['recovered_until']}; {report['threads_after_target']} threads written "
            f"after the target, {report['threads_after_target_restored']} of them restored",
            f"dr-drill: RPO {report['rpo_seconds']:.3f} s (target time minus the newest "
            f"transaction restored; WAL archive lag {report['archive_lag_seconds']:.1f} s)",
        ]
    else:
        lines += [
            f"dr-drill region-loss: newest primary backup {report['deleted_primary_key']} "
            f"deleted; replica copy restored from the DR region ({report['replica_bucket']}); "
            f"deleting the replica's version: {report['replica_delete_refused']}",
            f"dr-drill: RPO {report['rpo_seconds']:.1f} s (age of the newest replicated backup)",
        ]
    lines.append(
        f"dr-drill: RTO {report['rto_seconds']:.1f} s (restore start to /ready 200; "
        f"restore alone {report['restore_seconds']:.1f} s)"
    )
    return lines


def _scenario(name: str, env_file: Path, keep: bool) -> Callable[[Target, Path], dict[str, Any]]:
    if name == "pitr":
        admin_url, archive = local_pitr(env_file)
        return lambda target, work: run_pitr(target, Pitr(admin_url, archive), work, keep=keep)
    if name == "region-loss":
        return lambda target, work: run_region_loss(target, work)
    return lambda target, work: run_drill(target, work, keep=keep)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.drill")
    parser.add_argument("--scenario", choices=SCENARIOS, default="dump")
    parser.add_argument("--env-file", default=".local/env", help="the environment under drill")
    parser.add_argument("--keep", action="store_true", help="keep the restored database")
    args = parser.parse_args(argv)
    env_file = Path(args.env_file)
    try:
        target = local_target(env_file)
        work_dir = env_file.resolve().parent / "logs"
        work_dir.mkdir(parents=True, exist_ok=True)
        report = _scenario(args.scenario, env_file, args.keep)(target, work_dir)
    except (DrError, psycopg.Error, httpx.HTTPError, OSError, BotoCoreError, ClientError) as exc:
        print(f"dr-drill failed: {exc}", file=sys.stderr)
        print(json.dumps({"drill": "error", "scenario": args.scenario, "error": str(exc)}))
        return 1
    for line in _summary(report):
        print(line)
    for mismatch in report["mismatches"]:
        print(f"dr-drill: MISMATCH {mismatch}", file=sys.stderr)
    print(json.dumps(report))
    return 0 if report["drill"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
