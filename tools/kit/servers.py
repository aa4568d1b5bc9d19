"""Throw-away PostgreSQL and Redis servers on loopback, owned by the test or tool that starts them.

Each server lives in a temporary directory, listens on 127.0.0.1 on a free port, and can be
stopped (fast or in PostgreSQL's immediate mode) and started again on the same port and data,
which the failure tests need.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from tools.kit.ports import free_port, wait_for_port
from tools.kit.programs import postgres_owner, require_program


@dataclass
class PostgresServer:
    """A PostgreSQL cluster in its own directory; `url` connects as superuser `postgres`.

    fsync is off (an OS crash is not simulated here) but commits stay synchronous, so a
    committed row survives an immediate stop exactly as it would in production.
    """

    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pg-test-")))
    # Extra `-c name=value` server settings (WAL archiving, recovery).
    settings: dict[str, str] = field(default_factory=dict)
    _uid: int | None = None
    _gid: int | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def socket_url(self, database: str = "postgres") -> str:
        """Over the Unix socket: works whatever the cluster's pg_hba demands over TCP."""
        return f"postgresql://postgres@/{database}?host={self.root}&port={self.port}"

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - PostgreSQL's own programs
            argv,
            check=True,
            capture_output=True,
            text=True,
            user=self._uid,
            group=self._gid,
            env={**os.environ, "LC_ALL": "C"},
        )

    @property
    def owner(self) -> tuple[int, int] | None:
        """The OS user the cluster runs as (None: ourselves)."""
        return postgres_owner()

    def adopt(self) -> PostgresServer:
        """Hand `root` and everything in it (a data directory restored from a base backup)
        to the cluster's OS user; the data directory gets the mode PostgreSQL demands."""
        self._uid, self._gid = self.owner or (None, None)
        if self.data_dir.exists():
            self.data_dir.chmod(0o700)
        if self._uid is not None:
            for parent, dirs, files in os.walk(self.root):
                os.chown(parent, self._uid, self._gid or -1)
                for name in dirs + files:
                    os.chown(os.path.join(parent, name), self._uid, self._gid or -1)
        return self

    def init(self) -> PostgresServer:
        self.adopt()
        self._run(
            [
                require_program("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ]
        )
        return self

    def start(self, timeout: float = 30.0) -> PostgresServer:
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        # pg_ctl hands -o to a shell: each setting is one quoted word.
        for name, value in self.settings.items():
            opts += " -c " + shlex.quote(f"{name}={value}")
        self._run(
            [
                require_program("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.root / "server.log"),
                "-o",
                opts,
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ]
        )
        if not wait_for_port(self.port, timeout):
            raise RuntimeError(f"PostgreSQL did not listen on {self.port}: {self.log_tail()}")
        return self

    def stop(self, mode: str = "fast") -> None:
        """mode: smart, fast or immediate (immediate = crash-like, no checkpoint)."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        self._run([require_program("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"])

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def log_tail(self, lines: int = 20) -> str:
        log = self.root / "server.log"
        if not log.exists():
            return "(no log)"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class RedisServer:
    """A redis-server with no persistence; `url` connects to database 0."""

    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="redis-test-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0, password: str | None = None) -> RedisServer:
        """`password`: required of clients, given in a mode-600 config file (not in the
        process listing)."""
        config: list[str] = []
        if password is not None:
            path = self.root / "redis.conf"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(f"requirepass {password}\n")
            config = [str(path)]
        self.process = subprocess.Popen(  # noqa: S603 - the installed redis-server
            [
                require_program("redis-server"),
                *config,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_for_port(self.port, timeout):
            self.stop()
            raise RuntimeError(f"redis-server did not listen on {self.port}")
        return self

    def stop(self, kill: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=10)

    def destroy(self) -> None:
        try:
            self.stop(kill=True)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
