"""`make up` started by root never runs the agent as root (docs/smoke.md), also when the
project's Python lives where an unprivileged user cannot reach it (pyenv or uv under /root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.local.layout import Layout
from tools.local.services import reachable_by_others, service_owner, service_python

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root hands the agent to another user"
)


@pytest.fixture
def layout() -> Iterator[Layout]:
    # Under /tmp itself: pytest's own temporary directories are private to root.
    root = Path(tempfile.mkdtemp(prefix="agent-user-"))
    root.chmod(0o755)
    (root / "run").mkdir()
    (root / "logs").mkdir()
    try:
        yield Layout(root=root)
    finally:
        shutil.rmtree(root)


def test_root_runs_the_agent_as_an_unprivileged_user(layout: Layout) -> None:
    python = service_python(layout)
    owner = service_owner(layout, python)
    assert owner is not None, "the agent would run as root"
    assert owner[0] != 0
    assert reachable_by_others(python)
    done = subprocess.run(
        [python, "-c", "import os, agent_service.server.app, psycopg; print(os.getuid())"],
        user=owner[0],
        group=owner[1],
        env={"PATH": "/usr/bin:/bin", "HOME": str(layout.run)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(owner[0])
