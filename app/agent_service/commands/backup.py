"""`agent-service backup`: see `agent_service.dr.backup`."""

from __future__ import annotations

import argparse
import json
import sys
import time

import psycopg

from agent_service.commands.common import InvalidSettings, command_settings
from agent_service.dr.backup import MIB, S3_MIN_PART_MIB, Backup
from agent_service.dr.errors import DrError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bucket", help="S3 bucket (default: BACKUP_BUCKET)")
    parser.add_argument("--prefix", help="key prefix (default: BACKUP_PREFIX)")
    parser.add_argument(
        "--part-size-mib", type=int, default=16, help="multipart part size; memory holds one part"
    )
    parser.add_argument("--attempts", type=int, default=3, help="attempts before giving up")
    parser.add_argument(
        "--kms-key-id", help="SSE-KMS key id or ARN (default: BACKUP_KMS_KEY_ID; none: SSE-S3)"
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = command_settings()
        bucket = args.bucket or settings.backup_bucket
        if not bucket:
            raise DrError("no bucket: set BACKUP_BUCKET or pass --bucket")
        if args.part_size_mib < S3_MIN_PART_MIB:
            raise DrError(f"--part-size-mib must be at least {S3_MIN_PART_MIB} (the S3 minimum)")
        backup = Backup(
            settings,
            bucket=bucket,
            prefix=args.prefix if args.prefix is not None else settings.backup_prefix,
            part_size=args.part_size_mib * MIB,
            kms_key_id=args.kms_key_id or settings.backup_kms_key_id,
        )
        attempts = max(1, args.attempts)
        for attempt in range(1, attempts + 1):
            try:
                manifest = backup.run_once()
                break
            except DrError as exc:
                if attempt == attempts or not exc.retryable:
                    raise
                print(f"backup attempt {attempt} failed: {exc}; retrying", file=sys.stderr)
                time.sleep(min(30, 2**attempt))
    except (InvalidSettings, DrError, psycopg.Error) as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    print(
        json.dumps({"event": "backup complete", "bucket": bucket, **json.loads(manifest.to_json())})
    )
    return 0
