"""The DR drill: prove that a backup restores into a working service, through the API.

1. write a known data set through the running service (several users, threads with several
   checkpoints, store items) and read back what the API says about it;
2. take a backup; 3. restore it into a fresh database; 4. start a second service instance on
the restored database; 5. read everything again through that instance and compare.
It prints RPO (age of the backup restored) and RTO (start of the restore to the instance's
/ready 200), then one JSON line, and exits non-zero on any difference.

`python -m agent_service.dr.drill` runs it against the local environment (`.local/env`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from langgraph_sdk import get_client
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from agent_service.dr.backup import Backup
from agent_service.dr.errors import DrError
from agent_service.dr.restore import restore
from agent_service.dr.storage import Manifest
from agent_service.settings import Settings

GRAPH = "main_agent"
THREADS_PER_USER = 2
READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class Target:
    """The environment under drill: its service, its database, its backup store."""

    agent_url: str
    api_keys: Mapping[str, str]
    database_url: str
    database_password: str | None
    service_env: Mapping[str, str]
    settings: Settings


@dataclass
class Snapshot:
    """Everything the API says about the data set."""

    threads: dict[str, dict[str, Any]] = field(default_factory=dict)
    store: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def checkpoints(self) -> int:
        return sum(len(thread["history"]) for thread in self.threads.values())

    @property
    def store_items(self) -> int:
        return sum(len(items) for items in self.store.values())


def say(text: str) -> Any:
    """A run input with one user message (typed loosely: the SDK's input type is narrower)."""
    return {"messages": [{"role": "user", "content": text}]}


def _headers(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


async def write_dataset(target: Target) -> dict[str, list[str]]:
    """Threads per user, three runs each: memories saved, a chat turn, a recall."""
    threads: dict[str, list[str]] = {}
    for user, key in sorted(target.api_keys.items()):
        client = get_client(url=target.agent_url, api_key=key)
        threads[user] = []
        for n in range(THREADS_PER_USER):
            thread = await client.threads.create(metadata={"drill": True, "n": n})
            for text in (
                f"remember that {user} drilled thread {n}",
                "hello",
                "what do you remember",
            ):
                await client.runs.wait(
                    thread["thread_id"],
                    GRAPH,
                    input=say(text),
                )
            threads[user].append(thread["thread_id"])
    return threads


async def snapshot(
    agent_url: str, api_keys: Mapping[str, str], threads: Mapping[str, list[str]]
) -> Snapshot:
    taken = Snapshot()
    async with httpx.AsyncClient(base_url=agent_url, timeout=60) as http:
        for user, thread_ids in threads.items():
            client = get_client(url=agent_url, api_key=api_keys[user])
            for thread_id in thread_ids:
                history = await client.threads.get_history(thread_id, limit=1000)
                taken.threads[thread_id] = {
                    "thread": await client.threads.get(thread_id),
                    "state": await client.threads.get_state(thread_id),
                    "history": history,
                }
            exported = await http.get(f"/users/{user}/export", headers=_headers(api_keys[user]))
            exported.raise_for_status()
            taken.store[user] = sorted(
                exported.json()["store"], key=lambda item: (item["namespace"], item["key"])
            )
    return taken


def differences(expected: Snapshot, actual: Snapshot) -> list[str]:
    found: list[str] = []
    for thread_id, wanted in expected.threads.items():
        got = actual.threads.get(thread_id)
        if got is None:
            found.append(f"thread {thread_id}: missing")
            continue
        for part in ("state", "history", "thread"):
            if got[part] != wanted[part]:
                found.append(f"thread {thread_id}: {part} differs")
    for user, items in expected.store.items():
        if actual.store.get(user) != items:
            found.append(f"store items of {user}: differ")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def create_database(target: Target, name: str) -> str:
    admin = make_conninfo(target.database_url, password=target.database_password or None)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(target.database_url, name)


def with_database(url: str, name: str) -> str:
    """`url` (postgresql://…, as DATABASE_URL takes it) naming database `name` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop_database(target: Target, name: str) -> None:
    admin = make_conninfo(target.database_url, password=target.database_password or None)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextmanager
def service_on(target: Target, database_url: str, log_path: Path) -> Iterator[str]:
    """A second service instance on `database_url`; yields its URL once /ready answers 200."""
    port = _free_port()
    env = {
        **target.service_env,
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("REDIS_URL", None)  # its own in-process cache: nothing shared with the source
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent_service.cli", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if process.poll() is not None:
                raise DrError(f"the restored instance exited {process.returncode}; see {log_path}")
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise DrError(f"the restored instance is not ready after {READY_TIMEOUT:.0f} s")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def take_backup(target: Target) -> Manifest:
    settings = target.settings
    if not settings.backup_bucket:
        raise DrError("no BACKUP_BUCKET: the drill needs somewhere to back up to")
    return Backup(
        settings,
        bucket=settings.backup_bucket,
        prefix=settings.backup_prefix,
        part_size=16 * 1024 * 1024,
        kms_key_id=settings.backup_kms_key_id,
    ).run_once()


def run_drill(target: Target, work_dir: Path, *, keep: bool = False) -> dict[str, Any]:
    threads = asyncio.run(write_dataset(target))
    expected = asyncio.run(snapshot(target.agent_url, target.api_keys, threads))
    manifest = take_backup(target)
    return restore_and_verify(target, manifest, expected, threads, work_dir, keep=keep)


def restore_and_verify(
    target: Target,
    manifest: Manifest,
    expected: Snapshot,
    threads: Mapping[str, list[str]],
    work_dir: Path,
    *,
    keep: bool = False,
) -> dict[str, Any]:
    from agent_service.dr.storage import s3_client

    settings = target.settings
    assert settings.backup_bucket is not None
    name = f"drill_{datetime.now(UTC):%Y%m%d%H%M%S}_{uuid.uuid4().hex[:6]}"
    restore_started = time.monotonic()
    rpo = (datetime.now(UTC) - datetime.fromisoformat(manifest.created_at)).total_seconds()
    restored_url = create_database(target, name)
    try:
        client = s3_client(settings.aws_region, settings.s3_endpoint_url)
        restore(
            client,
            settings.backup_bucket,
            manifest,
            restored_url,
            target.database_password,
            force=False,
        )
        with service_on(target, restored_url, work_dir / f"{name}.log") as url:
            rto = time.monotonic() - restore_started
            actual = asyncio.run(snapshot(url, target.api_keys, threads))
    finally:
        if not keep:
            drop_database(target, name)
    mismatches = differences(expected, actual)
    return {
        "drill": "ok" if not mismatches else "mismatch",
        "users": len(threads),
        "threads": len(expected.threads),
        "checkpoints": expected.checkpoints,
        "store_items": expected.store_items,
        "mismatches": mismatches,
        "backup_key": manifest.key,
        "backup_bytes": manifest.size,
        "rpo_seconds": round(rpo, 3),
        "rto_seconds": round(rto, 3),
        "restored_database": name if keep else None,
    }


def read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        raise DrError(f"{path} not found: start the local environment with `make up` first")
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def local_target(env_file: Path) -> Target:
    values = read_env_file(env_file)
    secrets_dir = Path(values["SECRETS_DIR"])
    api_keys: dict[str, str] = json.loads((secrets_dir / "api_keys").read_text())
    drill_keys = {user: key for user, key in api_keys.items() if user.startswith("drill-")}
    if len(drill_keys) < 2:
        raise DrError(f"{secrets_dir}/api_keys has no drill principals: recreate .local/")
    password = (secrets_dir / "database_password").read_text().strip()
    service_keys = (
        "DATABASE_URL",
        "S3_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "BACKUP_BUCKET",
        "BACKUP_PREFIX",
        "SECRETS_DIR",
        "PG_BIN_DIR",
    )
    service_env = {
        "PATH": f"{values['PG_BIN_DIR']}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", str(secrets_dir.parent)),
        **{key: values[key] for key in service_keys},
    }
    os.environ.update({k: v for k, v in service_env.items() if k != "PATH"})
    settings = Settings(
        database_url=values["DATABASE_URL"],
        database_password=SecretStr(password),
        backup_bucket=values["BACKUP_BUCKET"],
        backup_prefix=values["BACKUP_PREFIX"],
        aws_region=values["AWS_REGION"],
        s3_endpoint_url=values["S3_ENDPOINT_URL"],
    )
    return Target(
        agent_url=values["AGENT_URL"],
        api_keys=drill_keys,
        database_url=values["DATABASE_URL"],
        database_password=password,
        service_env=service_env,
        settings=settings,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent_service.dr.drill")
    parser.add_argument("--env-file", default=".local/env", help="the environment under drill")
    parser.add_argument("--keep", action="store_true", help="keep the restored database")
    args = parser.parse_args(argv)
    try:
        target = local_target(Path(args.env_file))
        work_dir = Path(args.env_file).resolve().parent / "logs"
        work_dir.mkdir(parents=True, exist_ok=True)
        report = run_drill(target, work_dir, keep=args.keep)
    except (DrError, psycopg.Error, httpx.HTTPError) as exc:
        print(f"dr-drill failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"dr-drill: {report['users']} users, {report['threads']} threads, "
        f"{report['checkpoints']} checkpoints, {report['store_items']} store items"
    )
    print(f"dr-drill: RPO {report['rpo_seconds']:.1f} s (age of the backup restored)")
    print(f"dr-drill: RTO {report['rto_seconds']:.1f} s (restore start to /ready 200)")
    for mismatch in report["mismatches"]:
        print(f"dr-drill: MISMATCH {mismatch}", file=sys.stderr)
    print(json.dumps(report))
    return 0 if report["drill"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
