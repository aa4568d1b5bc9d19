"""The local environment's files under one state directory (`.local/` by default)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Ports:
    agent: int = 8000
    postgres: int = 54329
    redis: int = 63799
    s3: int = 59000


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def pg_data(self) -> Path:
        return self.root / "postgres" / "data"

    @property
    def pg_socket_dir(self) -> Path:
        return self.root / "postgres" / "socket"

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    @property
    def supervisor_pid(self) -> Path:
        return self.run / "supervisor.pid"

    @property
    def status(self) -> Path:
        return self.run / "status.json"

    @property
    def env_file(self) -> Path:
        return self.root / "env"

    @property
    def config(self) -> Path:
        """What `up` decided once (ports, names): a second `up` reuses it."""
        return self.root / "config.json"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"
