"""`agent-service restore`: see `agent_service.dr.restore`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

import psycopg

from agent_service.commands.common import InvalidSettings, command_settings
from agent_service.dr.errors import DrError
from agent_service.dr.postgres import password_of, without_password
from agent_service.dr.restore import restore
from agent_service.dr.storage import latest_manifest, normalise_prefix, read_manifest, s3_client


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", help="the backup's S3 key (default: the newest complete one)")
    parser.add_argument("--bucket", help="S3 bucket (default: BACKUP_BUCKET)")
    parser.add_argument("--prefix", help="where to look for the newest (default: BACKUP_PREFIX)")
    parser.add_argument(
        "--target-url",
        help="libpq URL of the database to restore into (default: DATABASE_URL); "
        "its password comes from the URL, DATABASE_PASSWORD or the secret file",
    )
    parser.add_argument(
        "--create",
        action="store_true",
        help="create the target database when it does not exist (after the checksum passed)",
    )
    parser.add_argument(
        "--force", action="store_true", help="restore into a database that already has tables"
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = command_settings()
        bucket = args.bucket or settings.backup_bucket
        if not bucket:
            raise DrError("no bucket: set BACKUP_BUCKET or pass --bucket")
        target = args.target_url or settings.database_url
        if not target:
            raise DrError("no target: pass --target-url or set DATABASE_URL")
        fallback = (
            settings.database_password.get_secret_value() if settings.database_password else None
        )
        client = s3_client(settings.aws_region, settings.s3_endpoint_url)
        prefix = normalise_prefix(
            args.prefix if args.prefix is not None else settings.backup_prefix
        )
        manifest = (
            read_manifest(client, bucket, args.key)
            if args.key
            else latest_manifest(client, bucket, prefix)
        )
        result = restore(
            client,
            bucket,
            manifest,
            without_password(target),
            password_of(target, fallback),
            force=args.force,
            create=args.create,
            pg_bin_dir=settings.pg_bin_dir,
        )
    except (InvalidSettings, DrError, psycopg.Error) as exc:
        print(f"restore failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"event": "restore complete", **asdict(result)}))
    return 0
