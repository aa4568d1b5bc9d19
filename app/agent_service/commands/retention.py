"""`agent-service retention`: delete threads past the retention horizon and sweep expired
store items (`agent_service.persistence.retention`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import psycopg
from psycopg_pool import PoolTimeout

from agent_service.commands.common import InvalidSettings, command_settings
from agent_service.persistence.retention import RetentionRefused, apply_retention


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--days", type=int, help="retention horizon in days (default: CHECKPOINT_CLEANUP_DAYS)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted, delete nothing"
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = command_settings()
        days = args.days if args.days is not None else settings.checkpoint_cleanup_days
        if days < 1:
            raise RetentionRefused("--days must be at least 1")
        report = asyncio.run(apply_retention(settings, days, dry_run=args.dry_run))
    except (InvalidSettings, RetentionRefused, psycopg.Error, PoolTimeout) as exc:
        print(f"retention failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"event": "retention complete", **report}))
    return 0
