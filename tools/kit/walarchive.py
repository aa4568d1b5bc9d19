"""Continuous WAL archiving of a local PostgreSQL cluster to the S3-compatible server, and the
restore_command that reads it back: PostgreSQL's own archive_command/restore_command running
curl with AWS Signature V4 (curl >= 7.75, `--aws-sigv4`), credentials in a netrc file.

Why not pgBackRest: Debian 12 ships pgBackRest 2.45, and no pgBackRest before 2.58 speaks plain
HTTP to an S3 endpoint ("There is no version of pgBackRest that supports bare HTTP for the S3
protocol", pgbackrest/pgbackrest#2612; HTTP added in 2.58, pgbackrest/pgbackrest#2745); the
local S3 server (moto) listens on plain HTTP on loopback. The commands follow PostgreSQL's
"Continuous Archiving and Point-in-Time Recovery" chapter (postgresql.org/docs/15/
continuous-archiving.html): a non-zero exit makes PostgreSQL keep the segment and retry;
`curl -f` exits 22 on a 404, which restore_command reports as "no such file".
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tools.kit.programs import require_program

WAL_PREFIX = "wal/"
BASE_PREFIX = "base/"
# A quiet cluster still ships its WAL within this many seconds: the bound on what an archive
# behind a lost primary lacks.
ARCHIVE_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class WalArchive:
    """Where a cluster's WAL goes: `endpoint_url`/`bucket`/`prefix`<segment>, path-style."""

    endpoint_url: str
    region: str
    bucket: str
    access_key_id: str
    secret_access_key: str
    prefix: str = WAL_PREFIX

    def segment_url(self, placeholder: str) -> str:
        return f"{self.endpoint_url.rstrip('/')}/{self.bucket}/{self.prefix}{placeholder}"

    def write_netrc(self, path: Path, owner: tuple[int, int] | None) -> Path:
        """The credentials curl signs with, readable only by the cluster's OS user."""
        host = urlsplit(self.endpoint_url).hostname or "127.0.0.1"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(
                f"machine {host} login {self.access_key_id} password {self.secret_access_key}\n"
            )
        if owner is not None:
            os.chown(path, *owner)
        return path

    def _curl(self, netrc: Path) -> str:
        return " ".join(
            [
                shlex.quote(require_program("curl")),
                "--silent --show-error --fail --max-time 120",
                f"--aws-sigv4 aws:amz:{shlex.quote(self.region)}:s3",
                f"--netrc-file {shlex.quote(str(netrc))}",
            ]
        )

    def archive_command(self, netrc: Path) -> str:
        # %p is relative to the data directory, PostgreSQL's working directory.
        return f"{self._curl(netrc)} --upload-file %p {shlex.quote(self.segment_url('%f'))}"

    def restore_command(self, netrc: Path) -> str:
        return f"{self._curl(netrc)} --output %p {shlex.quote(self.segment_url('%f'))}"

    def server_settings(self, netrc: Path) -> dict[str, str]:
        """`-c` settings that turn archiving on for a cluster started with them."""
        return {
            "wal_level": "replica",
            "archive_mode": "on",
            "archive_command": self.archive_command(netrc),
            "archive_timeout": str(ARCHIVE_TIMEOUT_SECONDS),
        }
