"""The drill end to end on its own servers: a service on PostgreSQL, moto's S3."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_service.dr.drill import (
    Target,
    restore_and_verify,
    run_drill,
    say,
    snapshot,
    take_backup,
    write_dataset,
)
from agent_service.settings import Settings
from langgraph_sdk import get_client

from tests.app.server.service import serve_in_process, wait_until_ready
from tests.dr.conftest import DrEnv
from tests.support.binaries import require_binary
from tests.support.s3 import CREDENTIALS

pytestmark = pytest.mark.integration

KEYS = {"drill-ana": "drill-ana-key-0123456789", "drill-ben": "drill-ben-key-0123456789"}


@pytest.fixture
def target(dr: DrEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)  # the drill's own backup talks to S3 in-process
    monkeypatch.setenv("PG_BIN_DIR", str(Path(require_binary("pg_dump")).parent))
    url = dr.database()
    env = dr.env(database_url=url, api_keys=json.dumps(KEYS), pythonpath=str(Path.cwd()))
    argv = [sys.executable, "-m", "agent_service.cli", "serve"]
    with serve_in_process(env, tmp_path / "source.log", argv=argv) as source:
        wait_until_ready(source.url)
        yield Target(
            agent_url=source.url,
            api_keys=KEYS,
            database_url=url,
            database_password=None,
            service_env={k: v for k, v in env.items() if k not in {"HOST", "PORT"}},
            settings=Settings(
                database_url=url,
                backup_bucket=dr.bucket,
                aws_region=env["AWS_REGION"],
                s3_endpoint_url=dr.s3.endpoint_url,
            ),
        )


def test_the_drill_restores_every_thread_and_store_item(target: Target, tmp_path: Path) -> None:
    report = run_drill(target, tmp_path)
    assert report["drill"] == "ok", report["mismatches"]
    assert (report["users"], report["threads"]) == (2, 4)
    assert report["checkpoints"] > report["threads"] * 3
    assert report["store_items"] >= 4
    assert 0 <= report["rpo_seconds"] < report["rto_seconds"]


def test_a_backup_missing_acknowledged_data_is_a_mismatch(target: Target, tmp_path: Path) -> None:
    threads = asyncio.run(write_dataset(target))
    manifest = take_backup(target)
    # Acknowledged after the backup: the restore cannot have it, and the drill must say so.
    user, thread_id = "drill-ana", threads["drill-ana"][0]

    async def one_more_run() -> None:
        client = get_client(url=target.agent_url, api_key=KEYS[user])
        late = say("remember that this came late")
        await client.runs.wait(thread_id, "main_agent", input=late)

    asyncio.run(one_more_run())
    expected = asyncio.run(snapshot(target.agent_url, target.api_keys, threads))
    report = restore_and_verify(target, manifest, expected, threads, tmp_path)
    assert report["drill"] == "mismatch"
    assert f"thread {thread_id}: state differs" in report["mismatches"]
    assert "store items of drill-ana: differ" in report["mismatches"]
