"""The pitr and region-loss drill scenarios end to end, on their own servers: a PostgreSQL
cluster archiving its WAL to moto's S3 exactly as `make up`'s does, a service on it, and the
drill driven through an env file shaped like the one `make up` writes.

Added to make test: about 60 s per scenario on this 2-core machine (most of it the restored
instance's start-up)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from agent_service.persistence.migrations import migrate_postgres

from tests.app.server.service import serve_in_process, wait_until_ready
from tests.dr.conftest import DrEnv
from tools.kit.programs import REPO_ROOT
from tools.kit.s3 import CREDENTIALS, REGION, S3Server
from tools.kit.servers import PostgresServer
from tools.kit.walarchive import WalArchive

pytestmark = pytest.mark.integration

KEYS = {
    "drill-ana": "drill-ana-key-0123456789",
    "drill-ben": "drill-ben-key-0123456789",
    "someone": "someone-key-0123456789",
}


@pytest.fixture
def archived(s3: S3Server, tmp_path: Path) -> Iterator[tuple[PostgresServer, str]]:
    """A cluster archiving its WAL into a fresh bucket; yields it and the bucket."""
    bucket = s3.create_bucket(f"backups-{uuid.uuid4().hex[:8]}")
    archive = WalArchive(
        endpoint_url=s3.endpoint_url,
        region=REGION,
        bucket=bucket,
        access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    server = PostgresServer()
    server.init()
    netrc = archive.write_netrc(server.root / "s3.netrc", server.owner)
    server.settings.update(archive.server_settings(netrc))
    try:
        yield server.start(), bucket
    finally:
        server.destroy()


@pytest.fixture
def env_file(archived: tuple[PostgresServer, str], s3: S3Server, tmp_path: Path) -> Iterator[Path]:
    server, bucket = archived
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "api_keys").write_text(json.dumps(KEYS))
    url = server.create_database("agent")
    asyncio.run(migrate_postgres(url))
    dr = DrEnv(postgres=server, s3=s3, bucket=bucket)
    env = dr.env(database_url=url, secrets_dir=str(secrets), pythonpath=str(REPO_ROOT))
    argv = [sys.executable, "-m", "agent_service.cli", "serve"]
    with serve_in_process(env, tmp_path / "source.log", argv=argv) as service:
        wait_until_ready(service.url)
        values = {"AGENT_URL": service.url, "AGENT_API_KEY": KEYS["someone"]}
        values |= {key: env[key] for key in env if key not in {"PATH", "HOME", "PYTHONPATH"}}
        values |= {"PG_ADMIN_URL": server.url(), "WAL_ARCHIVE_PREFIX": "wal/"}
        path = tmp_path / "env"
        path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
        yield path


def _drill(scenario: str, env_file: Path) -> tuple[int, list[str], dict[str, Any], str]:
    result = subprocess.run(
        [sys.executable, "-m", "tools.drill", "--scenario", scenario, "--env-file", str(env_file)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    return result.returncode, lines, json.loads(lines[-1]), result.stderr


def test_pitr_restores_everything_before_the_target_and_nothing_after(
    env_file: Path, archived: tuple[PostgresServer, str], s3: S3Server
) -> None:
    code, lines, report, stderr = _drill("pitr", env_file)
    assert code == 0, stderr
    assert report["drill"] == "ok", report["mismatches"]
    assert report["scenario"] == "pitr"
    assert report["runbook"] == "docs/runbooks/pitr.md"
    assert (report["users"], report["threads"]) == (2, 4)
    assert report["checkpoints"] > report["threads"] * 3
    assert report["store_items"] >= 4
    # Written after the target, then wiped by the bad migration: none of it comes back.
    assert report["threads_after_target"] == 4
    assert report["threads_after_target_restored"] == 0
    assert report["bad_migration_rows"] > report["checkpoints"]
    assert report["recovered_until"] <= report["target_time"] < report["disaster_at"]
    assert report["rpo_seconds"] >= 0
    assert 0 < report["restore_seconds"] <= report["rto_seconds"]
    assert any(line.startswith("dr-drill: RPO ") for line in lines)
    assert any(line.startswith("dr-drill: RTO ") for line in lines)
    # The source really lost the data (the drill did damage it), and its WAL is in S3.
    server, bucket = archived
    with psycopg.connect(server.url("agent")) as conn:
        row = conn.execute("SELECT count(*) FROM agent_threads").fetchone()
    assert row == (0,)
    listed = s3.client().list_objects_v2(Bucket=bucket, Prefix="wal/")
    assert listed["KeyCount"] >= 2
    assert report["base_backup_key"].startswith("base/")


def test_pitr_without_wal_archiving_says_how_to_get_it(env_file: Path, tmp_path: Path) -> None:
    lines = [line for line in env_file.read_text().splitlines() if "PG_ADMIN_URL" not in line]
    stale = tmp_path / "stale.env"
    stale.write_text("\n".join(lines) + "\n")
    code, _, report, stderr = _drill("pitr", stale)
    assert code == 1
    assert report == {"drill": "error", "scenario": "pitr", "error": report["error"]}
    assert "lacks PG_ADMIN_URL" in stderr
    assert "make down && make up" in stderr


def test_region_loss_restores_from_the_locked_replica_after_the_primary_copy_is_deleted(
    env_file: Path, archived: tuple[PostgresServer, str], s3: S3Server
) -> None:
    code, lines, report, stderr = _drill("region-loss", env_file)
    assert code == 0, stderr
    assert report["drill"] == "ok", report["mismatches"]
    assert report["scenario"] == "region-loss"
    assert "docs/runbooks/region-loss.md" in report["runbook"]
    assert (report["users"], report["threads"]) == (2, 4)
    assert report["restored_rows"]["agent_threads"] == 4
    # The newest backup is gone from the primary bucket, every version of it ...
    _, bucket = archived
    gone = s3.client().list_object_versions(Bucket=bucket, Prefix=report["deleted_primary_key"])
    assert not gone.get("Versions")
    assert not gone.get("DeleteMarkers")
    assert report["deleted_primary_versions"] == 2
    # ... yet it is what the DR region restored, and Object Lock refused to delete the copy.
    assert report["backup_key"] == report["deleted_primary_key"]
    assert report["replica_delete_refused"] == "AccessDenied"
    assert 0 <= report["rpo_seconds"] < report["rto_seconds"]
    assert any(line.startswith("dr-drill: RTO ") for line in lines)
