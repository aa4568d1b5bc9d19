"""What the DR commands need of PostgreSQL: its client programs, and a connection that keeps
the password out of argv (libpq reads it from PGPASSWORD in the child's environment)."""

from __future__ import annotations

import os
import shutil
import threading
from collections import deque
from pathlib import Path
from typing import IO

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from agent_service.dr.errors import DrError


def pg_program(name: str, bin_dir: Path | None) -> str:
    """`pg_dump` / `pg_restore` from `bin_dir` (the PG_BIN_DIR setting) when set, else PATH."""
    if bin_dir is not None:
        candidate = bin_dir / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
        raise DrError(f"{name} not found in PG_BIN_DIR={bin_dir}", retryable=False)
    found = shutil.which(name)
    if found is None:
        raise DrError(
            f"{name} not found on PATH (install postgresql-client or set PG_BIN_DIR)",
            retryable=False,
        )
    return found


def without_password(url: str) -> str:
    params = conninfo_to_dict(url)
    params.pop("password", None)
    return make_conninfo("", **{k: str(v) for k, v in params.items() if v is not None})


def child_env(password: str | None) -> dict[str, str]:
    # The child's environment: ours (PATH, locale, PG* defaults) plus the password.
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


class StderrTail:
    """Drains a child's stderr in a thread and keeps its last lines: neither the pipe nor memory
    can fill up, however much the child writes."""

    def __init__(self, stream: IO[bytes], lines: int = 20) -> None:
        self._lines: deque[str] = deque(maxlen=lines)
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream: IO[bytes]) -> None:
        with stream:
            for raw in stream:
                line = raw.decode(errors="replace").strip()
                if line:
                    self._lines.append(line)

    def reason(self) -> str:
        """The last error line (pg_dump and pg_restore follow it with `detail:` lines), else
        the last line."""
        self._thread.join(timeout=10)
        lines = list(self._lines)
        errors = [line for line in lines if "error" in line.lower()]
        return (errors or lines or ["no message"])[-1]


def ensure_database(url: str, password: str | None) -> bool:
    """Create the database `url` names when it does not exist, connecting to the server's
    `postgres` database with the same credentials; True when it was created."""
    params = conninfo_to_dict(url)
    name = str(params.get("dbname") or "")
    if not name:
        raise DrError(f"{describe(url)}: the target URL names no database")
    params["dbname"] = "postgres"
    if password:
        params["password"] = password
    admin = make_conninfo("", **{k: str(v) for k, v in params.items() if v is not None})
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if found.fetchone() is not None:
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    except psycopg.Error as exc:
        raise DrError(f"cannot create the target {describe(url)}: {exc}") from None
