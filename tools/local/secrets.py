"""The local environment's credentials: generated once, kept in files only its owner reads,
handed to the service as secret files (SECRETS_DIR), never on a command line."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent_service.core.redis_access import APP_USER

PRINCIPAL = "local"
# The DR drill writes its data set as several users, each with its own key.
DRILL_PRINCIPALS = ("drill-ana", "drill-ben", "drill-cy")


@dataclass(frozen=True)
class Credentials:
    database_password: str
    redis_username: str
    redis_password: str
    api_key: str
    # The environment's own Redis administrator (ACL changes, rotation): never in SECRETS_DIR,
    # which is the service's.
    redis_admin_password: str


def _write_private(path: Path, content: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)


def ensure_credentials(directory: Path) -> Credentials:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    wanted: dict[str, Callable[[], str]] = {
        "database_password": lambda: secrets.token_urlsafe(24),
        # The Redis ACL user with the service's keys and commands only, as in ElastiCache.
        "redis_username": lambda: APP_USER,
        "redis_password": lambda: secrets.token_urlsafe(24),
        "api_keys": lambda: json.dumps(
            {name: f"{name}-{secrets.token_urlsafe(24)}" for name in (PRINCIPAL, *DRILL_PRINCIPALS)}
        ),
    }
    for name, make in wanted.items():
        path = directory / name
        if not path.exists():
            _write_private(path, make())
    admin = admin_dir(directory)
    admin.mkdir(mode=0o700, exist_ok=True)
    if not (admin / "redis_admin_password").exists():
        _write_private(admin / "redis_admin_password", secrets.token_urlsafe(24))
    api_keys = json.loads((directory / "api_keys").read_text())
    return Credentials(
        database_password=(directory / "database_password").read_text().strip(),
        redis_username=(directory / "redis_username").read_text().strip(),
        redis_password=(directory / "redis_password").read_text().strip(),
        api_key=str(api_keys[PRINCIPAL]),
        redis_admin_password=(admin / "redis_admin_password").read_text().strip(),
    )


def admin_dir(secrets_dir: Path) -> Path:
    """Where the environment keeps what only it uses, beside the service's SECRETS_DIR."""
    return secrets_dir.parent / "admin"


def swap_private(path: Path, content: str) -> None:
    """Replace a secret file in one step (write aside, rename), as the kubelet updates a
    mounted Secret: a reader sees the old value or the new one, never half of either."""
    staged = path.with_name(f".{path.name}.new")
    _write_private(staged, content)
    if path.exists():
        # The service may run as another user (root's `make up` runs it as `nobody`, who owns
        # its secret files): the new file keeps the old one's owner, or the service could
        # not read its new credential.
        current = path.stat()
        os.chown(staged, current.st_uid, current.st_gid)
    os.replace(staged, path)


def write_private(path: Path, content: str) -> None:
    _write_private(path, content)
