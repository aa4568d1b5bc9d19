"""What the DR commands need of PostgreSQL: its client programs, and a connection that keeps
the password out of argv (libpq reads it from PGPASSWORD in the child's environment)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from agent_service.dr.errors import DrError


def pg_program(name: str) -> str:
    """`pg_dump` / `pg_restore` from PG_BIN_DIR when set, else from PATH."""
    bin_dir = os.environ.get("PG_BIN_DIR")
    if bin_dir:
        candidate = Path(bin_dir) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
        raise DrError(f"{name} not found in PG_BIN_DIR={bin_dir}")
    found = shutil.which(name)
    if found is None:
        raise DrError(f"{name} not found on PATH (install postgresql-client or set PG_BIN_DIR)")
    return found


def without_password(url: str) -> str:
    params = conninfo_to_dict(url)
    params.pop("password", None)
    return make_conninfo("", **{k: str(v) for k, v in params.items() if v is not None})


def child_env(password: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = password
    return env


def describe(url: str) -> str:
    """host/dbname of a connection, for messages and metadata (no user, no password)."""
    params = conninfo_to_dict(url)
    return (
        f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params.get('dbname', '')}"
    )


def password_of(url: str, fallback: str | None) -> str | None:
    return str(conninfo_to_dict(url).get("password") or "") or fallback
