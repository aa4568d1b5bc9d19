"""The drill end to end on its own servers (PostgreSQL, moto's S3, a service subprocess), driven
through an env file shaped like the one `make up` writes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from langgraph_sdk import get_client

from tests.app.server.service import serve_in_process, wait_until_ready
from tests.dr.conftest import DrEnv
from tests.dr.dataset import databases
from tools.drill import (
    local_target,
    restore_and_verify,
    say,
    snapshot,
    write_dataset,
)
from tools.drill.commands import take_backup
from tools.kit.programs import REPO_ROOT

pytestmark = pytest.mark.integration

KEYS = {
    "drill-ana": "drill-ana-key-0123456789",
    "drill-ben": "drill-ben-key-0123456789",
    "someone": "someone-key-0123456789",
}


@dataclass
class Source:
    env_file: Path
    database_url: str


def _env_file(path: Path, values: dict[str, str]) -> Path:
    path.write_text("# as `make up` writes it\n" + "".join(f"{k}={v}\n" for k, v in values.items()))
    return path


@pytest.fixture
def source(dr: DrEnv, tmp_path: Path) -> Iterator[Source]:
    """A service on a migrated database, and the env file that describes it."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "api_keys").write_text(json.dumps(KEYS))
    (secrets / "database_password").write_text("unused-with-trust-auth\n")
    url = dr.database()
    env = dr.env(database_url=url, secrets_dir=str(secrets), pythonpath=str(REPO_ROOT))
    argv = [sys.executable, "-m", "agent_service.cli", "serve"]
    with serve_in_process(env, tmp_path / "source.log", argv=argv) as service:
        wait_until_ready(service.url)
        values = {"AGENT_URL": service.url, "AGENT_API_KEY": KEYS["someone"]}
        values |= {key: env[key] for key in env if key not in {"PATH", "HOME", "PYTHONPATH"}}
        yield Source(_env_file(tmp_path / "env", values), url)


def _drill(env_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.drill", "--env-file", str(env_file)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_drill_restores_every_thread_and_store_item(
    source: Source, dr: DrEnv, tmp_path: Path
) -> None:
    before = databases(source.database_url)
    outcome = _drill(source.env_file)
    assert outcome.returncode == 0, outcome.stderr
    lines = outcome.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    assert report["drill"] == "ok", report["mismatches"]
    # Only the drill-* principals write: two users, two threads each.
    assert (report["users"], report["threads"]) == (2, 4)
    assert report["checkpoints"] > report["threads"] * 3
    assert report["store_items"] >= 4
    assert report["restored_rows"]["agent_threads"] == 4
    assert report["backup_taken_by_drill"] is True
    assert 0 <= report["rpo_seconds"] < report["rto_seconds"]
    assert report["restore_seconds"] <= report["rto_seconds"]
    assert any(line.startswith("dr-drill: RPO ") for line in lines)
    assert any(line.startswith("dr-drill: RTO ") for line in lines)
    # The restored database and instance are gone; the backup stays where backups go.
    assert databases(source.database_url) == before
    listed = dr.s3.client().list_objects_v2(Bucket=dr.bucket, Prefix="postgres/")
    assert report["backup_key"] in {item["Key"] for item in listed["Contents"]}
    assert list((tmp_path / "logs").glob("drill_*.log"))


def test_a_backup_missing_acknowledged_data_is_a_mismatch(source: Source, tmp_path: Path) -> None:
    target = local_target(source.env_file)
    threads = asyncio.run(write_dataset(target.agent_url, target.api_keys))
    taken = take_backup(target.service_env)
    # Acknowledged after the backup: the restore cannot have it, and the drill must say so.
    user, thread_id = "drill-ana", threads["drill-ana"][0]

    async def one_more_run() -> None:
        client = get_client(url=target.agent_url, api_key=KEYS[user])
        late = say("remember that this came late")
        await client.runs.wait(thread_id, "main_agent", input=late)

    asyncio.run(one_more_run())
    expected = asyncio.run(snapshot(target.agent_url, target.api_keys, threads))
    report = restore_and_verify(target, expected, threads, tmp_path, key=taken.key)
    assert report["drill"] == "mismatch"
    assert f"thread {thread_id}: state differs" in report["mismatches"]
    assert f"thread {thread_id}: history differs" in report["mismatches"]
    assert "store items of drill-ana: differ" in report["mismatches"]
    assert not any("drill-ben" in line for line in report["mismatches"])


def test_a_failing_backup_fails_the_drill_with_a_json_line(source: Source, tmp_path: Path) -> None:
    values = dict(
        line.split("=", 1)
        for line in source.env_file.read_text().splitlines()
        if not line.startswith("#")
    )
    broken = _env_file(tmp_path / "broken.env", {**values, "BACKUP_BUCKET": "no-such-bucket"})
    before = databases(source.database_url)
    outcome = _drill(broken)
    assert outcome.returncode == 1
    assert "dr-drill failed: agent-service backup exited 1" in outcome.stderr
    assert "NoSuchBucket" in outcome.stderr
    report = json.loads(outcome.stdout.strip().splitlines()[-1])
    assert report["drill"] == "error"
    assert "NoSuchBucket" in report["error"]
    assert databases(source.database_url) == before


def test_without_the_local_environment_the_drill_says_make_up(tmp_path: Path) -> None:
    outcome = _drill(tmp_path / "missing" / "env")
    assert outcome.returncode == 1
    assert "not found: start the local environment with `make up` first" in outcome.stderr
    assert json.loads(outcome.stdout.strip().splitlines()[-1])["drill"] == "error"
