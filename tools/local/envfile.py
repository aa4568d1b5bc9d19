"""`.local/env`: what `make up` writes for the operator (`source .local/env`), the DR drill and
the smoke suite. One list of the service settings it carries, one reader, one writer."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

# The service settings copied from the local service's environment: what the drill's own
# commands (`agent-service backup|restore`) and its second instance need.
SERVICE_KEYS = (
    "DATABASE_URL",
    "REDIS_URL",
    "S3_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "BACKUP_BUCKET",
    "BACKUP_PREFIX",
    "SECRETS_DIR",
    "PG_BIN_DIR",
)
# Point-in-time recovery (the drill's pitr scenario): a superuser connection to the cluster
# over its Unix socket, and the prefix its WAL is archived under in BACKUP_BUCKET.
PITR_KEYS = ("PG_ADMIN_URL", "WAL_ARCHIVE_PREFIX")
# The service runs without these (no REDIS_URL: its cache stays in-process).
OPTIONAL_KEYS = frozenset({"REDIS_URL"})


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=value` lines; comments and blank lines skipped. FileNotFoundError when absent."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def write_env_file(path: Path, header: str, values: Mapping[str, str]) -> None:
    """Mode 600 from the first byte: the file holds the local API key."""
    lines = [f"# {header}", *(f"{key}={value}" for key, value in values.items())]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
