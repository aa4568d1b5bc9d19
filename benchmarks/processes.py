"""Servers under measurement: started as processes, timed to ready, their memory read from
/proc (the whole process tree: a server may fork workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    ready_seconds: float
    log: Path

    def rss_mb(self) -> float:
        return tree_rss_kb(self.process.pid) / 1024


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def tree_rss_kb(pid: int) -> int:
    total = 0
    for member in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
        if member != pid:
            total += sum(tree_rss_kb(grandchild) for grandchild in _children(member))
    return total


@contextmanager
def start(
    name: str,
    command: list[str],
    env: dict[str, str],
    url: str,
    ready_path: str,
    log: Path,
    cwd: Path,
    timeout: float = 120.0,
) -> Iterator[Server]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        started = time.monotonic()
        process = subprocess.Popen(  # noqa: S603 - the servers under test
            command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited {process.returncode}; see {log}")
            try:
                if httpx.get(url + ready_path, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"{name} not ready after {timeout:.0f} s; see {log}")
            time.sleep(0.02)
        yield Server(name, url, process, time.monotonic() - started, log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
