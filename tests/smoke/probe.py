"""A probe that runs inside the target (a pod or this machine) with the target's python:
the service's process (user, command line, environment keys), its listening ports, /ready,
and whether the root filesystem and /tmp accept writes. Prints one JSON object."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

SERVICE_MARKERS = ("agent_service.cli serve", "agent-service serve")


def _status_uid(pid: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return -1


def processes() -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            found.append({"pid": int(entry.name), "uid": _status_uid(entry.name), "args": args})
        except OSError:
            continue
    return found


def listening_ports() -> list[int]:
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def writable(directory: str) -> bool:
    probe = Path(directory) / f".smoke-probe-{os.getpid()}"
    try:
        probe.write_text("x")
    except OSError:
        return False
    probe.unlink()
    return True


def ready(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as answer:
            return int(answer.status)
    except OSError as exc:
        return int(getattr(exc, "code", 0) or 0)


def serves_port(pid: object, port: int) -> bool:
    """Whether the process was started for this target: its environment holds PORT=<port>.
    On a machine running other instances (a test suite's), the marker alone is not enough.
    An environment we may not read (another user's process) counts as not ours."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"PORT={port}".encode() in environ


def main() -> None:
    port = int(os.environ.get("SMOKE_PORT", "8000"))
    every = processes()
    service = [
        p
        for p in every
        if any(m in str(p["args"]) for m in SERVICE_MARKERS) and serves_port(p["pid"], port)
    ]
    print(
        json.dumps(
            {
                "service": service,
                "command_lines": [p["args"] for p in every],
                "listening": listening_ports(),
                "ready": ready(port),
                "root_writable": writable("/"),
                "tmp_writable": writable("/tmp"),
            }
        )
    )


if __name__ == "__main__":
    main()
