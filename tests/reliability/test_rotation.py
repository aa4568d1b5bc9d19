"""Credential rotation under load: the service's PostgreSQL password (ALTER ROLE + a new secret
file) and its Redis ACL password are rotated and the old ones revoked while 16 clients keep
sending runs. Not one request may fail, every pooled connection must move to the new
credential without a restart, and the old credentials must be refused afterwards.

The secret files are replaced the way the kubelet updates a mounted Secret: the new content is
written aside and swapped in with one rename.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from agent_service.core.redis_access import APP_USER as REDIS_USER
from agent_service.core.redis_access import access_rules
from agent_service.persistence import roles
from psycopg import sql

from tests.app.server.conftest import fresh_database
from tests.reliability.figures import Figures
from tests.reliability.load import Acknowledged, missing_runs, run_load
from tests.reliability.service import client, drill_env, running
from tools.kit.servers import PostgresServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONCURRENCY = 16
STEADY_SECONDS = 2.0
CONVERGE_TIMEOUT = 30.0
# Scram for every role but the superuser the fixtures use: the drill needs real passwords.
PG_HBA = (
    "local all all trust\n"
    "host all postgres 127.0.0.1/32 trust\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
)
REDIS_ADMIN = "drill-admin"


def _acl(client: redis.Redis, *rules: str) -> None:
    client.execute_command("ACL", "SETUSER", *rules)  # type: ignore[no-untyped-call]


def _swap(directory: Path, name: str, value: str) -> None:
    """Replace a secret file atomically, as the kubelet's symlink swap does."""
    staged = directory / f".{name}.new"
    staged.write_text(value + "\n")
    os.replace(staged, directory / name)


def _password_login(server: PostgresServer) -> None:
    (server.data_dir / "pg_hba.conf").write_text(PG_HBA)
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")


@pytest.fixture
def acl_redis() -> Iterator[tuple[RedisServer, redis.Redis]]:
    """An own Redis whose default user is off: the service logs in as its ACL user, the drill
    as an admin."""
    server = RedisServer().start()
    admin_password = secrets.token_urlsafe(16)
    with redis.Redis(port=server.port) as bootstrap:
        bootstrap.acl_setuser(REDIS_ADMIN, enabled=True, passwords=[f"+{admin_password}"])
        _acl(bootstrap, REDIS_ADMIN, "~*", "&*", "+@all")
        _acl(bootstrap, "default", "off")
    admin = redis.Redis(port=server.port, username=REDIS_ADMIN, password=admin_password)
    try:
        yield server, admin
    finally:
        admin.close()
        server.destroy()


def _redis_user(admin: redis.Redis, password: str) -> None:
    _acl(admin, REDIS_USER, "reset", "on", f">{password}")
    _acl(admin, REDIS_USER, *access_rules())


def _pg_backends(url: str, user: str, since: float | None) -> tuple[int, int]:
    """(connections of `user`, those opened before `since` (epoch seconds))."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE extract(epoch FROM backend_start) < %s) "
            "FROM pg_stat_activity WHERE usename = %s AND datname = current_database()",
            (since if since is not None else 0.0, user),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _redis_clients(admin: redis.Redis) -> list[int]:
    return [
        int(entry["id"])
        for entry in admin.client_list(_type="normal")
        if entry.get("user") == REDIS_USER
    ]


def test_rotation_under_load(
    tmp_path: Path,
    postgres_server_own: PostgresServer,
    acl_redis: tuple[RedisServer, redis.Redis],
) -> None:
    redis_server, admin = acl_redis
    _password_login(postgres_server_own)
    url = fresh_database(postgres_server_own)  # migrates as the superuser: roles exist
    superuser_url = url
    old_pg, new_pg = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    old_redis, new_redis = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(roles.APP), sql.Literal(old_pg)
            )
        )
    _redis_user(admin, old_redis)

    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    for name, value in {
        "database_user": roles.APP,
        "database_password": old_pg,
        "redis_username": REDIS_USER,
        "redis_password": old_redis,
    }.items():
        _swap(secrets_dir, name, value)
    service_url = url.replace("postgres@", f"{roles.APP}@")
    env = drill_env(
        tmp_path,
        database_url=service_url,
        redis_url=redis_server.url,
        secrets_dir=secrets_dir,
        database_pool_min=4,
        database_pool_max=8,
    )
    figures, acknowledged = Figures("credential-rotation"), Acknowledged()
    marks: dict[str, float] = {}
    ready: list[int] = []

    async def watch_ready(http: httpx.AsyncClient) -> None:
        while "done" not in marks:
            try:
                ready.append((await http.get("/ready", timeout=5)).status_code)
            except httpx.HTTPError:
                ready.append(0)
            await asyncio.sleep(0.2)

    async def rotate() -> None:
        await asyncio.sleep(STEADY_SECONDS)
        before_pg = await asyncio.to_thread(_pg_backends, superuser_url, roles.APP, None)
        before_redis = await asyncio.to_thread(_redis_clients, admin)
        marks["pg_connections_before"] = float(before_pg[0])
        marks["redis_connections_before"] = float(len(before_redis))

        # PostgreSQL: one password per role, so the new one replaces the old at once; the
        # connections already open stay valid, new ones must read the new file.
        def alter() -> float:
            with psycopg.connect(superuser_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(roles.APP), sql.Literal(new_pg)
                    )
                )
                row = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
            assert row is not None
            return float(row[0])

        pg_epoch = await asyncio.to_thread(alter)
        _swap(secrets_dir, "database_password", new_pg)
        marks["pg_rotated"] = time.monotonic()

        # Redis: a user may hold two passwords; add the new one, move the clients, then revoke.
        _acl(admin, REDIS_USER, f">{new_redis}")
        last_old_client = max(
            [int(entry["id"]) for entry in admin.client_list(_type="normal")], default=0
        )
        _swap(secrets_dir, "redis_password", new_redis)
        marks["redis_rotated"] = time.monotonic()

        deadline = time.monotonic() + CONVERGE_TIMEOUT
        while time.monotonic() < deadline and not (
            "pg_converged" in marks and "redis_converged" in marks
        ):
            if "pg_converged" not in marks:
                total, stale = await asyncio.to_thread(
                    _pg_backends, superuser_url, roles.APP, pg_epoch
                )
                if total and not stale:
                    marks["pg_converged"] = time.monotonic()
            if "redis_converged" not in marks:
                ids = await asyncio.to_thread(_redis_clients, admin)
                if ids and min(ids) > last_old_client:
                    marks["redis_converged"] = time.monotonic()
            await asyncio.sleep(0.05)
        _acl(admin, REDIS_USER, f"<{old_redis}")
        marks["revoked"] = time.monotonic()
        await asyncio.sleep(STEADY_SECONDS)
        marks["done"] = time.monotonic()

    with running(env, tmp_path / "service.log") as process:

        async def scenario() -> list[str]:
            async with client(process) as http:
                watcher = asyncio.create_task(watch_ready(http))
                events = asyncio.create_task(rotate())
                await run_load(
                    http,
                    graph="main_agent",
                    runs=1_000_000,
                    concurrency=CONCURRENCY,
                    threads_per_worker=2,
                    figures=figures,
                    acknowledged=acknowledged,
                    stop=lambda: "done" in marks,
                )
                await events
                await watcher
                return await missing_runs(http, acknowledged)

        missing = asyncio.run(scenario())
        log = process.log()

    pg_s = marks.get("pg_converged", float("nan")) - marks["pg_rotated"]
    redis_s = marks.get("redis_converged", float("nan")) - marks["redis_rotated"]
    after = [s for t, _, s in figures.timeline if t >= marks["revoked"]]
    figures.extra.update(
        {
            "clients": str(CONCURRENCY),
            "pg_connections": str(int(marks["pg_connections_before"])),
            "pg_all_new_s": f"{pg_s:.2f}",
            "redis_connections": str(int(marks["redis_connections_before"])),
            "redis_all_new_s": f"{redis_s:.2f}",
            "in_flight_at_rotation": str(
                sum(t < marks["pg_rotated"] < t + d for t, d, _ in figures.timeline)
            ),
            "requests_after_revoke": str(len(after)),
            "ready_non_200": str(sum(code != 200 for code in ready)),
            "lost": str(len(missing)),
        }
    )
    figures.report()

    assert figures.errors == 0, sorted(set(figures.statuses))
    # The load spans the rotation: requests before it, in flight across it, after the revoke.
    rotated = marks["pg_rotated"]
    assert any(start + seconds < rotated for start, seconds, _ in figures.timeline)
    assert any(start < rotated < start + seconds for start, seconds, _ in figures.timeline)
    assert after, "no request after the revocation"
    assert all(status == 200 for status in after)
    assert "pg_converged" in marks, "pooled connections kept the old PostgreSQL password"
    assert "redis_converged" in marks, "Redis connections kept the old password"
    assert ready
    assert all(code == 200 for code in ready), ready
    assert missing == []
    # The old credentials are refused now; the new ones work.
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(service_url, password=old_pg, connect_timeout=5).close()
    psycopg.connect(service_url, password=new_pg, connect_timeout=5).close()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=redis_server.port, username=REDIS_USER, password=old_redis).ping()
    assert redis.Redis(port=redis_server.port, username=REDIS_USER, password=new_redis).ping()
    # Nothing secret reached the log.
    for value in (old_pg, new_pg, old_redis, new_redis):
        assert value not in log


def test_a_wrong_new_credential_is_named_by_ready(
    tmp_path: Path, postgres_server_own: PostgresServer
) -> None:
    """The database moved to a new password but the secret file got a wrong one: the
    connections opened before keep serving (ready, degraded, the cause named); once they are
    gone the service is not ready and says which login is refused and where it comes from.
    Never a password in the answer."""
    _password_login(postgres_server_own)
    url = fresh_database(postgres_server_own)
    first, rotated, wrong = (secrets.token_urlsafe(24) for _ in range(3))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(roles.APP), sql.Literal(first)
            )
        )
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    _swap(secrets_dir, "database_user", roles.APP)
    _swap(secrets_dir, "database_password", first)
    env = drill_env(
        tmp_path,
        database_url=url.replace("postgres@", f"{roles.APP}@"),
        secrets_dir=secrets_dir,
        database_pool_min=2,
        database_pool_max=4,
    )

    def ready(http: httpx.Client) -> tuple[int, dict[str, Any]]:
        answer = http.get("/ready", timeout=10)
        return answer.status_code, answer.json()["checks"]["database"]

    with (
        running(env, tmp_path / "service.log") as process,
        httpx.Client(base_url=process.url) as http,
    ):
        assert ready(http)[0] == 200
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(roles.APP), sql.Literal(rotated)
                )
            )
        _swap(secrets_dir, "database_password", wrong)
        deadline = time.monotonic() + 20
        status, database = ready(http)
        while time.monotonic() < deadline and not database.get("degraded"):
            time.sleep(0.5)
            status, database = ready(http)
        assert status == 200, database
        assert database["degraded"] is True
        assert "password authentication failed" in database["detail"]
        assert "database_user/database_password" in database["detail"]
        # The connections opened with the old password go (a failover, a recycle).
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (roles.APP,),
            )
        deadline = time.monotonic() + 20
        status, database = ready(http)
        while time.monotonic() < deadline and status != 503:
            time.sleep(0.5)
            status, database = ready(http)
        assert status == 503, database
        assert f'password authentication failed for user "{roles.APP}"' in database["detail"]
        assert "database_user/database_password" in database["detail"]
        log = process.log()
    for value in (first, rotated, wrong):
        assert value not in json.dumps(database)
        assert value not in log
