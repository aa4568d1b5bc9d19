"""The local environment's credentials: generated once, kept in files only its owner reads,
handed to the service as secret files (SECRETS_DIR), never on a command line."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PRINCIPAL = "local"
# The DR drill writes its data set as several users, each with its own key.
DRILL_PRINCIPALS = ("drill-ana", "drill-ben", "drill-cy")


@dataclass(frozen=True)
class Credentials:
    database_password: str
    redis_password: str
    api_key: str


def _write_private(path: Path, content: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)


def ensure_credentials(directory: Path) -> Credentials:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    wanted: dict[str, Callable[[], str]] = {
        "database_password": lambda: secrets.token_urlsafe(24),
        "redis_password": lambda: secrets.token_urlsafe(24),
        "api_keys": lambda: json.dumps(
            {name: f"{name}-{secrets.token_urlsafe(24)}" for name in (PRINCIPAL, *DRILL_PRINCIPALS)}
        ),
    }
    for name, make in wanted.items():
        path = directory / name
        if not path.exists():
            _write_private(path, make())
    api_keys = json.loads((directory / "api_keys").read_text())
    return Credentials(
        database_password=(directory / "database_password").read_text().strip(),
        redis_password=(directory / "redis_password").read_text().strip(),
        api_key=str(api_keys[PRINCIPAL]),
    )


def write_private(path: Path, content: str) -> None:
    _write_private(path, content)
