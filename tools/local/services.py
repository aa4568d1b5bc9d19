"""The processes of the local environment: how each is prepared once, started, and known to be
up. The supervisor runs them in this order and stops them in reverse."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg
from agent_service.core.redis_access import access_rules
from psycopg import sql

from tools.kit.ports import port_open
from tools.kit.process import is_ready
from tools.kit.programs import (
    PG_OS_USER,
    REPO_ROOT,
    postgres_bin_dir,
    postgres_owner,
    require_program,
)
from tools.kit.walarchive import WAL_PREFIX, WalArchive
from tools.local.layout import Layout, Ports
from tools.local.secrets import Credentials, write_private

BUCKET = "agent-backups"
REGION = "eu-west-1"
# moto accepts any credentials; these only keep botocore from looking for real ones.
S3_KEYS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
# The environment's Redis administrator (ACL changes, `make rotate`); the service never is.
REDIS_ADMIN = "local-admin"


SERVICE_OS_USER = "nobody"


def reachable_by_others(program: str) -> bool:
    """Whether an unprivileged user can run `program` (every directory on its real path
    searchable, the file executable by others)."""
    path = Path(os.path.realpath(program))
    if not path.stat().st_mode & stat.S_IXOTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.parents)


def service_python(layout: Layout) -> str:
    """The interpreter the agent runs with. This one, unless root must hand the agent to
    `nobody`, who cannot reach it (a pyenv or uv Python under /root): then a venv in the state
    directory on the system's Python of the same minor version, with the service's locked
    dependencies installed by uv (markers may differ between patch versions: redis needs
    async-timeout below 3.11.3) and app/ on its path."""
    if os.geteuid() != 0 or reachable_by_others(sys.executable):
        return sys.executable
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    uv = shutil.which("uv")
    if system is None or uv is None or not reachable_by_others(system):
        return sys.executable
    venv = layout.run / "agent-venv"
    python = venv / "bin" / "python"
    lock = (REPO_ROOT / "uv.lock").read_bytes()
    stamp = venv / "uv.lock.installed"
    if not (python.exists() and stamp.exists() and stamp.read_bytes() == lock):
        requirements = layout.run / "agent-requirements.txt"
        with layout.log("agent-venv").open("ab") as log:
            for command in (
                [uv, "venv", "--quiet", "--allow-existing", "--python", system, str(venv)],
                [uv, "export", "--frozen", "--no-default-groups", "--only-group", "service",
                 "--no-hashes", "--no-emit-project", "--output-file", str(requirements)],
                [uv, "pip", "install", "--quiet", "--python", str(python), "-r",
                 str(requirements)],
            ):  # fmt: skip
                subprocess.run(  # noqa: S603 - fixed programs
                    command, check=True, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
                )
        site_packages = venv / "lib" / version / "site-packages"
        (site_packages / "agent-platform.pth").write_text(f"{REPO_ROOT / 'app'}\n")
        stamp.write_bytes(lock)
    return str(python)


def service_owner(layout: Layout, python: str) -> tuple[int, int] | None:
    """The agent never runs as root when it can be helped: a root user runs it as `nobody`
    (with `service_python`), which then owns the secret files it reads and the directories it
    writes. Only when no interpreter `nobody` can reach exists does it run as the invoking
    user, and `status` says so."""
    if os.geteuid() != 0 or not reachable_by_others(python):
        return None
    entry = pwd.getpwnam(SERVICE_OS_USER)
    owner = entry.pw_uid, entry.pw_gid
    for directory in (layout.secrets, layout.run / "agent-home", layout.run / "prometheus"):
        directory.mkdir(parents=True, exist_ok=True)
        _chown_tree(directory, owner)
    return owner


@dataclass
class Service:
    name: str
    command: list[str]
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    owner: tuple[int, int] | None = None
    # Signal that shuts it down cleanly (PostgreSQL: SIGINT is its "fast" shutdown).
    stop_signal: int = 15
    one_shot: bool = False
    ready_timeout: float = 60.0


def agent_env(layout: Layout, ports: Ports) -> dict[str, str]:
    pg_bin = postgres_bin_dir()
    return {
        "PATH": f"{pg_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(layout.run / "agent-home"),
        "HOST": "127.0.0.1",
        "PORT": str(ports.agent),
        "WORKERS": "2",
        "LOG_LEVEL": "INFO",
        "SECRETS_DIR": str(layout.secrets),
        "DATABASE_URL": f"postgresql://agent@127.0.0.1:{ports.postgres}/agent",
        "REDIS_URL": f"redis://127.0.0.1:{ports.redis}/0",
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{ports.s3}",
        "AWS_REGION": REGION,
        **S3_KEYS,
        "BACKUP_BUCKET": BUCKET,
        "BACKUP_PREFIX": "postgres/",
        "PG_BIN_DIR": str(pg_bin),
        "PROMETHEUS_MULTIPROC_DIR": str(layout.run / "prometheus"),
        "SQLITE_PATH": str(layout.run / "unused.sqlite"),
        "PYTHONUNBUFFERED": "1",
    }


def wal_archive(ports: Ports) -> WalArchive:
    """Where the local cluster archives its WAL: the backup bucket of the local S3 server."""
    return WalArchive(
        endpoint_url=f"http://127.0.0.1:{ports.s3}",
        region=REGION,
        bucket=BUCKET,
        access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
        secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
        prefix=WAL_PREFIX,
    )


def admin_url(layout: Layout, ports: Ports) -> str:
    """The superuser over the Unix socket (trusted locally; never over TCP)."""
    return f"postgresql://postgres@/postgres?host={layout.pg_socket_dir}&port={ports.postgres}"


def archive_options(layout: Layout, ports: Ports, owner: tuple[int, int] | None) -> list[str]:
    """`-c` options: continuous WAL archiving to the local S3 server (the pitr drill)."""
    archive = wal_archive(ports)
    netrc = archive.write_netrc(layout.pg_data.parent / "s3.netrc", owner)
    options: list[str] = []
    for name, value in archive.server_settings(netrc).items():
        options += ["-c", f"{name}={value}"]
    return options


def _chown_tree(path: Path, owner: tuple[int, int] | None) -> None:
    if owner is None:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, *owner)
        for name in dirs + files:
            os.chown(os.path.join(root, name), *owner)


def prepare_postgres(layout: Layout, owner: tuple[int, int] | None) -> None:
    """initdb once: local socket trusted for the bootstrap, TCP only with a password."""
    if owner is not None and not all(
        parent.stat().st_mode & stat.S_IXOTH for parent in layout.root.resolve().parents
    ):
        raise RuntimeError(
            f"PostgreSQL runs as the {PG_OS_USER!r} OS user and cannot reach {layout.root}: "
            "make its parent directories searchable (chmod o+x) or choose another state dir"
        )
    layout.pg_socket_dir.mkdir(parents=True, exist_ok=True)
    _chown_tree(layout.pg_data.parent, owner)
    if (layout.pg_data / "PG_VERSION").exists():
        return
    layout.pg_data.mkdir(parents=True, exist_ok=True)
    _chown_tree(layout.pg_data.parent, owner)
    command = [
        require_program("initdb"),
        "-D",
        str(layout.pg_data),
        "-U",
        "postgres",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
    ]
    with layout.log("initdb").open("ab") as log:
        subprocess.run(  # noqa: S603 - fixed program
            command, check=True, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_as(owner)
        )


def _as(owner: tuple[int, int] | None) -> Callable[[], None] | None:
    if owner is None:
        return None
    uid, gid = owner

    def drop() -> None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    return drop


def admin_conninfo(layout: Layout) -> str:
    return f"host={layout.pg_socket_dir} port={_pg_port(layout)} user=postgres dbname=postgres"


def postgres_accepting(layout: Layout) -> bool:
    """PostgreSQL listens before it accepts sessions ("the database system is starting up"):
    ready is a session that opens."""
    try:
        with psycopg.connect(admin_conninfo(layout), connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def bootstrap_database(layout: Layout, credentials: Credentials) -> None:
    """The service's role and database; the password is (re)set from the secret file."""
    with psycopg.connect(admin_conninfo(layout), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'agent'").fetchone()
        verb = "ALTER" if exists else "CREATE"
        # CREATEROLE: the migration creates the least-privilege roles
        # (agent_service.persistence.roles), as the migrator does in RDS.
        conn.execute(
            sql.SQL(verb + " ROLE agent LOGIN CREATEDB CREATEROLE PASSWORD {}").format(
                sql.Literal(credentials.database_password)
            )
        )
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'agent'").fetchone() is None:
            conn.execute("CREATE DATABASE agent OWNER agent")
    # pgvector (the store's semantic search) is no trusted extension: the superuser creates it,
    # as RDS's master user does (docs/runbooks/rotate-credentials.md).
    agent_db = admin_conninfo(layout).replace("dbname=postgres", "dbname=agent")
    with psycopg.connect(agent_db, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


def _pg_port(layout: Layout) -> int:
    return int((layout.run / "postgres.port").read_text())


def prepare_redis(layout: Layout, ports: Ports, credentials: Credentials) -> Path:
    """A config file (mode 600) carries the passwords, so they are not in the process listing.
    Written from the secret files at every start: a rotation's result survives a restart."""
    layout.redis_dir.mkdir(parents=True, exist_ok=True)
    config = layout.redis_dir / "redis.conf"
    write_private(
        config,
        "\n".join(
            [
                "bind 127.0.0.1",
                f"port {ports.redis}",
                f"dir {layout.redis_dir}",
                # ACL users as in ElastiCache RBAC: the default user off, the service's user
                # limited to its keys and commands, the environment's admin for rotation.
                "user default off",
                " ".join(
                    [
                        "user",
                        credentials.redis_username,
                        "on",
                        f">{credentials.redis_password}",
                        *access_rules(),
                    ]
                ),
                f"user {REDIS_ADMIN} on >{credentials.redis_admin_password} ~* &* +@all",
                "appendonly no",
                "save ''",
                "",
            ]
        ),
    )
    return config


def create_bucket(ports: Ports) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{ports.s3}",
        region_name=REGION,
        aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
    )
    existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
    if BUCKET not in existing:
        location: Any = {"LocationConstraint": REGION}
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration=location)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})


def plan(layout: Layout, ports: Ports, credentials: Credentials) -> list[Service]:
    """The services, in start order."""
    owner = postgres_owner()
    prepare_postgres(layout, owner)
    (layout.run / "postgres.port").write_text(str(ports.postgres))
    redis_config = prepare_redis(layout, ports, credentials)
    env = agent_env(layout, ports)
    python = service_python(layout)
    agent_owner = service_owner(layout, python)
    return [
        Service(
            name="postgres",
            command=[
                require_program("postgres"),
                "-D",
                str(layout.pg_data),
                "-p",
                str(ports.postgres),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={layout.pg_socket_dir}",
                "-c",
                "max_connections=200",
                *archive_options(layout, ports, owner),
            ],
            ready=lambda: postgres_accepting(layout),
            owner=owner,
            stop_signal=2,
        ),
        Service(
            name="redis",
            command=[require_program("redis-server"), str(redis_config)],
            ready=lambda: port_open(ports.redis),
        ),
        Service(
            name="s3",
            command=[sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(ports.s3)],
            ready=lambda: port_open(ports.s3),
        ),
        Service(
            name="migrate",
            command=[python, "-m", "agent_service.cli", "migrate"],
            ready=lambda: True,
            env=env,
            owner=agent_owner,
            one_shot=True,
        ),
        Service(
            name="agent",
            command=[python, "-m", "agent_service.cli", "serve"],
            ready=lambda: is_ready(f"http://127.0.0.1:{ports.agent}"),
            env=env,
            owner=agent_owner,
            ready_timeout=120.0,
        ),
    ]


def clean_prometheus_dir(layout: Layout) -> None:
    """Empty the workers' metric files (a restart starts from zero), keeping the directory."""
    directory = layout.run / "prometheus"
    for entry in directory.glob("*.db"):
        entry.unlink(missing_ok=True)


__all__ = [
    "BUCKET",
    "REGION",
    "REPO_ROOT",
    "S3_KEYS",
    "Service",
    "admin_url",
    "agent_env",
    "bootstrap_database",
    "clean_prometheus_dir",
    "create_bucket",
    "plan",
    "port_open",
    "wal_archive",
]
