"""The environment under drill: where its service, database and backups are."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent_service.dr.errors import DrError

from tools.kit.walarchive import WalArchive
from tools.local.envfile import OPTIONAL_KEYS, PITR_KEYS, SERVICE_KEYS, read_env_file

DRILL_PRINCIPAL_PREFIX = "drill-"


@dataclass(frozen=True)
class Target:
    """A running service, its database (`database_url` names the database the service uses;
    the drill creates and drops its restore target next to it), and the environment the
    service's commands run with (`service_env`: DATABASE_URL, BACKUP_BUCKET, S3 settings...)."""

    agent_url: str
    api_keys: Mapping[str, str]
    database_url: str
    database_password: str | None
    service_env: Mapping[str, str]

    @property
    def bucket(self) -> str:
        bucket = self.service_env.get("BACKUP_BUCKET", "")
        if not bucket:
            raise DrError("no BACKUP_BUCKET: the drill needs somewhere to back up to")
        return bucket

    @property
    def prefix(self) -> str:
        return self.service_env.get("BACKUP_PREFIX", "postgres/")


def local_target(env_file: Path) -> Target:
    """The environment `make up` describes in `env_file`; the drill acts as its `drill-*`
    principals (their keys in SECRETS_DIR/api_keys)."""
    if not env_file.exists():
        raise DrError(f"{env_file} not found: start the local environment with `make up` first")
    values = read_env_file(env_file)
    required = [key for key in ("AGENT_URL", *SERVICE_KEYS) if key not in OPTIONAL_KEYS]
    missing = [key for key in required if not values.get(key)]
    if missing:
        raise DrError(f"{env_file} lacks {', '.join(missing)}: recreate it with `make up`")
    secrets_dir = Path(values["SECRETS_DIR"])
    try:
        api_keys: dict[str, str] = json.loads((secrets_dir / "api_keys").read_text())
        password_file = secrets_dir / "database_password"
        password = password_file.read_text().strip() if password_file.exists() else None
    except (OSError, ValueError) as exc:
        raise DrError(f"cannot read the API keys in {secrets_dir}: {exc}") from None
    drill_keys = {
        user: key for user, key in api_keys.items() if user.startswith(DRILL_PRINCIPAL_PREFIX)
    }
    if len(drill_keys) < 2:
        raise DrError(
            f"{secrets_dir}/api_keys has fewer than two {DRILL_PRINCIPAL_PREFIX}* principals: "
            "recreate the local environment (`make down`, remove .local/, `make up`)"
        )
    service_env = {
        "PATH": f"{values['PG_BIN_DIR']}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", str(secrets_dir.parent)),
        **{key: values[key] for key in SERVICE_KEYS if values.get(key)},
    }
    return Target(
        agent_url=values["AGENT_URL"],
        api_keys=drill_keys,
        database_url=values["DATABASE_URL"],
        database_password=password,
        service_env=service_env,
    )


def local_pitr(env_file: Path) -> tuple[str, WalArchive]:
    """The superuser connection and WAL archive of the environment in `env_file` (what the
    pitr scenario needs beyond `local_target`)."""
    values = read_env_file(env_file)
    missing = [key for key in PITR_KEYS if not values.get(key)]
    if missing:
        raise DrError(
            f"{env_file} lacks {', '.join(missing)}: the environment does not archive its WAL; "
            "restart it with this version's `make up` (`make down && make up`)"
        )
    archive = WalArchive(
        endpoint_url=values["S3_ENDPOINT_URL"],
        region=values["AWS_REGION"],
        bucket=values["BACKUP_BUCKET"],
        access_key_id=values["AWS_ACCESS_KEY_ID"],
        secret_access_key=values["AWS_SECRET_ACCESS_KEY"],
        prefix=values["WAL_ARCHIVE_PREFIX"],
    )
    return values["PG_ADMIN_URL"], archive
