"""`make up` / `make down` / status for the local environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tools.kit.programs import REPO_ROOT, postgres_bin_dir
from tools.local.envfile import SERVICE_KEYS, write_env_file
from tools.local.layout import Layout, Ports
from tools.local.secrets import ensure_credentials
from tools.local.services import admin_url, agent_env, port_open, wal_archive

UP_TIMEOUT = 240.0


class LocalError(RuntimeError):
    """What went wrong, in one line for the operator."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def supervisor_pid(layout: Layout) -> int | None:
    try:
        pid = int(layout.supervisor_pid.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def read_status(layout: Layout) -> dict[str, Any]:
    try:
        status: dict[str, Any] = json.loads(layout.status.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {"state": "absent"}
    return status


def load_ports(layout: Layout, requested: Ports) -> Ports:
    """The ports of an existing environment win: its data and env file name them."""
    if layout.config.exists():
        return Ports(**json.loads(layout.config.read_text())["ports"])
    return requested


def _write_env(layout: Layout, ports: Ports, api_key: str) -> None:
    service = agent_env(layout, ports)
    agent = read_status(layout).get("services", {}).get("agent", {})
    write_env_file(
        layout.env_file,
        "Written by `make up`; `source .local/env` to use it. Holds the local API key.",
        {
            "AGENT_URL": f"http://127.0.0.1:{ports.agent}",
            "AGENT_API_KEY": api_key,
            **{key: service[key] for key in SERVICE_KEYS},
            "PG_ADMIN_URL": admin_url(layout, ports),
            "WAL_ARCHIVE_PREFIX": wal_archive(ports).prefix,
            "AGENT_LOG": str(layout.log("agent")),
            "AGENT_USER": agent.get("user", ""),
            "LOCAL_STATE_DIR": str(layout.root),
        },
    )


def _check_ports(ports: Ports) -> None:
    for name, port in asdict(ports).items():
        if port_open(port):
            raise LocalError(
                f"port {port} ({name}) is already in use by another program: stop it, or pick "
                f"another with LOCAL_{name.upper()}_PORT=<port> on a fresh .local/"
            )


def up(layout: Layout, requested: Ports) -> Ports:
    """Start the environment (or find it running) and wait until the service is ready."""
    layout.root.mkdir(parents=True, exist_ok=True)
    # PostgreSQL runs as its own OS user when we are root: it must reach its data directory.
    layout.root.chmod(0o755)
    for directory in (layout.logs, layout.run):
        directory.mkdir(parents=True, exist_ok=True)
    ports = load_ports(layout, requested)
    credentials = ensure_credentials(layout.secrets)
    if supervisor_pid(layout) is not None and read_status(layout).get("state") == "up":
        _write_env(layout, ports, credentials.api_key)
        return ports
    if supervisor_pid(layout) is None:
        _check_ports(ports)
        postgres_bin_dir()  # fails early, naming `make tools`, when PostgreSQL is missing
        layout.config.write_text(json.dumps({"ports": asdict(ports)}))
        layout.status.unlink(missing_ok=True)
        with layout.log("supervisor").open("ab") as log:
            subprocess.Popen(  # noqa: S603 - this package, detached from the caller's session
                [sys.executable, "-m", "tools.local", "supervise", "--state-dir", str(layout.root)],
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
    deadline = time.monotonic() + UP_TIMEOUT
    while time.monotonic() < deadline:
        state = read_status(layout).get("state")
        if state == "up":
            _write_env(layout, ports, credentials.api_key)
            return ports
        if state == "failed":
            raise LocalError(
                f"the local environment failed to start: {read_status(layout)['error']}"
            )
        time.sleep(0.2)
    raise LocalError(f"the local environment is not up after {UP_TIMEOUT:.0f} s; see {layout.logs}")


def down(layout: Layout, timeout: float = 90.0) -> bool:
    """Stop the environment; False when it was not running."""
    pid = supervisor_pid(layout)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        raise LocalError(f"the supervisor (pid {pid}) did not stop in {timeout:.0f} s")
    return True


def usage(ports: Ports) -> str:
    url = f"http://127.0.0.1:{ports.agent}"
    body = (
        '{"assistant_id": "main_agent", "input": {"messages": [{"role": "user", "content": "hi"}]}}'
    )
    return "\n".join(
        [
            f"The local environment is up on {url} (state, logs and secrets in .local/).",
            "",
            "  source .local/env",
            '  curl -s -X POST "$AGENT_URL/runs/wait" -H "X-API-Key: $AGENT_API_KEY" \\',
            f"       -H 'Content-Type: application/json' -d '{body}'",
            "",
            "  # Python (langgraph-sdk):",
            "  from langgraph_sdk import get_client",
            '  client = get_client(url=os.environ["AGENT_URL"],',
            '                      api_key=os.environ["AGENT_API_KEY"])',
            '  await client.runs.wait(None, "main_agent", input={"messages": [',
            '      {"role": "user", "content": "remember that I like tea"}]})',
            "",
            "Stop it with: make down",
        ]
    )


def state_dir(path: str | None) -> Layout:
    return Layout(Path(path or os.environ.get("LOCAL_STATE_DIR") or REPO_ROOT / ".local").resolve())
