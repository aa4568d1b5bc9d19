"""Where the external programs are: the repository's .tools/bin (what `make tools` installs),
then PATH, then Debian's versioned PostgreSQL directory (its server programs are not on PATH).
A missing program is an error that names `make tools`."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"
# initdb and postgres refuse to run as root; a root caller hands the cluster to this OS user.
PG_OS_USER = "postgres"


class MissingProgram(RuntimeError):
    pass


def find_program(name: str) -> str | None:
    local = TOOLS_BIN / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def require_program(name: str) -> str:
    path = find_program(name)
    if path is None:
        raise MissingProgram(f"{name!r} is not installed: run `make tools`")
    return path


def postgres_bin_dir() -> Path:
    """The directory of the PostgreSQL server programs; pg_dump of the same version is there."""
    return Path(require_program("initdb")).resolve().parent


def postgres_owner() -> tuple[int, int] | None:
    """The uid/gid to run PostgreSQL as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(PG_OS_USER)
    except KeyError as exc:
        raise MissingProgram(
            f"running as root, PostgreSQL needs the {PG_OS_USER!r} OS user: run `make tools`"
        ) from exc
    return entry.pw_uid, entry.pw_gid
