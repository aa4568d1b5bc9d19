"""`make up` as a user meets it, in a throw-away state directory on free ports: it comes up,
answers, is idempotent, refuses a taken port by name, passes the smoke suite, and stops."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tools.kit.ports import free_port
from tools.kit.programs import REPO_ROOT
from tools.local.envfile import read_env_file

pytestmark = pytest.mark.integration


def local(state: Path, command: str, **ports: int) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **{f"LOCAL_{name.upper()}_PORT": str(port) for name, port in ports.items()},
    }
    return subprocess.run(
        [sys.executable, "-m", "tools.local", command, "--state-dir", str(state)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def environment() -> Iterator[Path]:
    # Not under pytest's tmp dir: its parents are private, and PostgreSQL runs as its own user.
    state = Path(tempfile.mkdtemp(prefix="local-env-"))
    state.chmod(0o755)
    ports = {name: free_port() for name in ("agent", "postgres", "redis", "s3")}
    started = local(state, "up", **ports)
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        yield state
    finally:
        stopped = local(state, "down")
        shutil.rmtree(state, ignore_errors=True)
        assert stopped.returncode == 0, stopped.stderr


def read_env(state: Path) -> dict[str, str]:
    return read_env_file(state / "env")


def test_up_writes_the_env_file_and_the_service_answers(environment: Path) -> None:
    env = read_env(environment)
    assert (environment / "env").stat().st_mode & 0o077 == 0
    assert {"AGENT_URL", "AGENT_API_KEY", "DATABASE_URL", "REDIS_URL", "S3_ENDPOINT_URL"} <= set(
        env
    )
    assert httpx.get(f"{env['AGENT_URL']}/ready").json()["checks"]["cache"]["ok"] is True
    answer = httpx.post(
        f"{env['AGENT_URL']}/runs/wait",
        headers={"X-API-Key": env["AGENT_API_KEY"]},
        json={
            "assistant_id": "main_agent",
            "input": {"messages": [{"role": "user", "content": "hi"}]},
        },
        timeout=60,
    )
    assert answer.status_code == 200
    assert answer.json()["messages"][-1]["content"] == "You said: hi"


def test_redis_has_acl_users_as_in_elasticache(environment: Path) -> None:
    """The default user is off; the service's user reaches its keys and commands only."""
    env = read_env(environment)
    port = int(env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port).ping()
    user = (environment / "secrets" / "redis_username").read_text().strip()
    password = (environment / "secrets" / "redis_password").read_text().strip()
    with redis.Redis(port=port, username=user, password=password) as client:
        assert client.ping()
        client.set("agent-service:node-cache:probe", b"1", ex=5)
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set("someone-else:key", b"1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.flushall()
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.config_get("*")


def test_rotate_moves_the_service_without_a_restart(environment: Path) -> None:
    env = read_env(environment)
    secrets_dir = environment / "secrets"
    before = {
        name: (secrets_dir / name).read_text() for name in ("database_password", "redis_password")
    }
    rotated = local(environment, "rotate")
    assert rotated.returncode == 0, rotated.stderr + rotated.stdout
    assert "PostgreSQL role agent: new password" in rotated.stdout
    assert "old one revoked" in rotated.stdout
    for name, old in before.items():
        assert (secrets_dir / name).read_text() != old
        assert old.strip() not in rotated.stdout
    answer = httpx.post(
        f"{env['AGENT_URL']}/runs/wait",
        headers={"X-API-Key": env["AGENT_API_KEY"]},
        json={
            "assistant_id": "main_agent",
            "input": {"messages": [{"role": "user", "content": "after"}]},
        },
        timeout=60,
    )
    assert answer.status_code == 200
    assert httpx.get(f"{env['AGENT_URL']}/ready").status_code == 200
    port = int(env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    user = (secrets_dir / "redis_username").read_text().strip()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port, username=user, password=before["redis_password"].strip()).ping()


def test_a_second_up_finds_it_running(environment: Path) -> None:
    again = local(environment, "up")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout


def test_a_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = local(tmp_path / "other", "up", agent=port, postgres=free_port())
    assert refused.returncode == 1
    assert f"port {port} (agent) is already in use" in refused.stderr


def test_the_smoke_suite_passes_against_it(environment: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/smoke",
            "--hosts=local://",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "SMOKE_ENV_FILE": str(environment / "env")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout


def test_down_is_safe_to_repeat(tmp_path: Path) -> None:
    assert "not running" in local(tmp_path / "never", "down").stdout
