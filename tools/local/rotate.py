"""`make rotate`: rotate the running local environment's credentials the way production does,
without restarting anything (docs/runbooks/rotate-credentials.md).

- PostgreSQL: the service's role gets a new password (ALTER ROLE) and its secret file is
  swapped; the service's pool opens new connections with it and replaces the old ones.
- Redis: the service's ACL user gets a second password, the secret file is swapped, and once
  every connection of the user was opened after the swap (or after a bounded wait) the old
  password is removed.

Prints what it did and how long the service took to move; never a password.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import redis
from psycopg import sql

from tools.local.layout import Layout, Ports
from tools.local.secrets import ensure_credentials, swap_private
from tools.local.services import REDIS_ADMIN, admin_conninfo

DATABASE_ROLE = "agent"
WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Rotated:
    database_role: str
    database_connections_moved_s: float | None
    redis_user: str
    redis_connections_moved_s: float | None
    redis_stale_connections: int

    def lines(self) -> list[str]:
        def moved(seconds: float | None) -> str:
            if seconds is None:
                return f"not all within {WAIT_SECONDS:.0f} s (idle connections move on next use)"
            return f"every connection on the new one after {seconds:.2f} s"

        return [
            f"PostgreSQL role {self.database_role}: new password; "
            f"{moved(self.database_connections_moved_s)}.",
            f"Redis user {self.redis_user}: new password, old one revoked; "
            f"{moved(self.redis_connections_moved_s)}"
            + (
                f" ({self.redis_stale_connections} connection(s) authenticated before)."
                if self.redis_stale_connections
                else "."
            ),
        ]


def _pg_stale(layout: Layout, since_epoch: float) -> tuple[int, int]:
    with psycopg.connect(admin_conninfo(layout), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE extract(epoch FROM backend_start) < %s) "
            "FROM pg_stat_activity WHERE usename = %s",
            (since_epoch, DATABASE_ROLE),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _wait(check: Callable[[], bool], started: float) -> float | None:
    while time.monotonic() - started < WAIT_SECONDS:
        if check():
            return time.monotonic() - started
        time.sleep(0.2)
    return None


def rotate(layout: Layout, ports: Ports) -> Rotated:
    credentials = ensure_credentials(layout.secrets)
    new_database = secrets.token_urlsafe(24)
    with psycopg.connect(admin_conninfo(layout), autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(DATABASE_ROLE), sql.Literal(new_database)
            )
        )
        row = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
    assert row is not None
    swap_private(layout.secrets / "database_password", new_database)
    started = time.monotonic()
    database_moved = _wait(lambda: _pg_stale(layout, float(row[0]))[1] == 0, started)

    user = credentials.redis_username
    new_redis = secrets.token_urlsafe(24)
    admin = redis.Redis(
        host="127.0.0.1",
        port=ports.redis,
        username=REDIS_ADMIN,
        password=credentials.redis_admin_password,
    )
    with admin:
        admin.execute_command("ACL", "SETUSER", user, f">{new_redis}")  # type: ignore[no-untyped-call]
        last_old = max((int(c["id"]) for c in admin.client_list()), default=0)
        swap_private(layout.secrets / "redis_password", new_redis)
        started = time.monotonic()

        def stale() -> list[int]:
            return [
                int(c["id"])
                for c in admin.client_list(_type="normal")
                if c.get("user") == user and int(c["id"]) <= last_old
            ]

        redis_moved = _wait(lambda: not stale(), started)
        remaining = len(stale())
        admin.execute_command("ACL", "SETUSER", user, f"<{credentials.redis_password}")  # type: ignore[no-untyped-call]
    return Rotated(DATABASE_ROLE, database_moved, user, redis_moved, remaining)
