"""Find the external programs tests drive; a missing one is a failure that names `make tools`."""

from __future__ import annotations

import glob
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"


def find_binary(name: str) -> str | None:
    """Return the path of `name`: .tools/bin first, then PATH, then Debian's versioned
    PostgreSQL directory (its server programs are not on PATH)."""
    local = TOOLS_BIN / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def require_binary(name: str) -> str:
    """Like find_binary, but fail the test (never skip) when the program is missing."""
    path = find_binary(name)
    if path is None:
        pytest.fail(f"{name!r} is not installed: run `make tools`", pytrace=False)
    return path
