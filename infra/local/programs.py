"""Where the local environment's programs are: the repository's .tools/bin, then PATH, then
Debian's versioned PostgreSQL directory (its server programs are not on PATH)."""

from __future__ import annotations

import glob
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"


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
