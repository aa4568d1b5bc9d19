"""DR fixtures: real PostgreSQL databases, an S3-compatible server (moto) with a versioned
bucket, and the service's commands run as the CronJob runs them, as a subprocess."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agent_service.persistence.migrations import migrate_postgres

from tools.kit.programs import REPO_ROOT, require_program
from tools.kit.s3 import CREDENTIALS, REGION, S3Server, s3_server
from tools.kit.servers import PostgresServer


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str

    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(self.stdout.strip().splitlines()[-1])
        return report


@dataclass
class DrEnv:
    postgres: PostgresServer
    s3: S3Server
    bucket: str

    def database(self, *, migrated: bool = True) -> str:
        url = self.postgres.create_database(f"dr_{uuid.uuid4().hex[:10]}")
        if migrated:
            asyncio.run(migrate_postgres(url))
        return url

    def env(self, **settings: str) -> dict[str, str]:
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": "/tmp",
            "SECRETS_DIR": "/nonexistent",
            "PG_BIN_DIR": str(Path(require_program("pg_dump")).parent),
            "AWS_REGION": REGION,
            "S3_ENDPOINT_URL": self.s3.endpoint_url,
            "BACKUP_BUCKET": self.bucket,
            "BACKUP_PREFIX": "postgres/",
            **CREDENTIALS,
            **{key.upper(): value for key, value in settings.items()},
        }

    def command(self, *argv: str, **settings: str) -> Outcome:
        result = subprocess.run(
            [sys.executable, "-m", "agent_service.cli", *argv],
            env=self.env(**settings),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return Outcome(result.returncode, result.stdout, result.stderr)


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture
def dr(postgres_server: PostgresServer, s3: S3Server) -> DrEnv:
    bucket = s3.create_bucket(f"backups-{uuid.uuid4().hex[:8]}")
    return DrEnv(postgres=postgres_server, s3=s3, bucket=bucket)
