"""Start a server as a process, wait until its readiness path answers 200, stop it on exit; its
memory is read from /proc over the whole process tree (a server may fork workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tools.kit.programs import REPO_ROOT

READY_TIMEOUT = 120.0


class NotReady(RuntimeError):
    """The process exited, or did not answer 200 in time; the message names its log."""


def is_ready(url: str, path: str = "/ready") -> bool:
    try:
        return httpx.get(url + path, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_ready(
    url: str,
    *,
    process: subprocess.Popen[bytes] | None = None,
    timeout: float = READY_TIMEOUT,
    path: str = "/ready",
    what: str = "the service",
    log: Path | None = None,
) -> float:
    """Poll `url + path` until 200; returns the seconds it took. Fails early when `process`
    exits."""
    started = time.monotonic()
    see = f"; see {log}" if log else ""
    last = "no answer"
    while True:
        if process is not None and process.poll() is not None:
            raise NotReady(f"{what} exited {process.returncode}{see}")
        try:
            response = httpx.get(url + path, timeout=2)
            if response.status_code == 200:
                return time.monotonic() - started
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        if time.monotonic() - started > timeout:
            raise NotReady(f"{what} at {url} not ready after {timeout:.0f} s ({last}){see}")
        time.sleep(0.02)


@dataclass
class Started:
    """A process started by `started`; `ready_seconds` is None unless it was waited for."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    ready_seconds: float | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def rss_mb(self) -> float:
        return tree_rss_kb(self.process.pid) / 1024


def _stop(process: subprocess.Popen[bytes], group: bool, timeout: float) -> None:
    if process.poll() is not None:
        return

    def send(signum: int) -> None:
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)

    if timeout > 0:
        send(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            pass
    send(signal.SIGKILL)
    process.wait(timeout=30)


@contextmanager
def started(
    name: str,
    command: Sequence[str],
    env: Mapping[str, str],
    *,
    url: str,
    log: Path,
    cwd: Path = REPO_ROOT,
    ready_path: str | None = "/ready",
    timeout: float = READY_TIMEOUT,
    stop_timeout: float = 40.0,
    own_group: bool = False,
) -> Iterator[Started]:
    """Run `command` (output to `log`), wait until `url + ready_path` answers 200 (not at all
    when `ready_path` is None), and on exit stop it: SIGTERM, then SIGKILL after
    `stop_timeout` (at once when 0). `own_group` starts it in a session of its own and signals
    the whole group (servers that fork)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - the caller's own programs
            list(command),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=own_group,
        )
    running = Started(name=name, url=url, process=process, log_path=log)
    try:
        if ready_path is not None:
            running.ready_seconds = wait_until_ready(
                url, process=process, timeout=timeout, path=ready_path, what=name, log=log
            )
        yield running
    finally:
        _stop(process, own_group, stop_timeout)


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


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its descendants so far (/proc/<pid>/stat utime
    and stime; a descendant that has exited no longer counts, so read it around a window in
    which the tree stays the same)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the command: state is field 3, utime 14 and stime 15 (proc(5)).
        total += (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return 0.0
    return total + sum(tree_cpu_seconds(child) for child in _children(pid))


def machine_cpu_seconds() -> float:
    """CPU seconds all of the machine's cores have spent busy so far, every process counted
    (the first line of /proc/stat: user, nice, system, irq and softirq; not idle, iowait or
    the time the hypervisor stole, proc(5)). Over a window, divided by the window and the
    core count, it says how close to saturated the machine was."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    return (user + nice + system + irq + softirq) / _CLOCK_TICKS


# The cores `machine_cpu_seconds` sums over.
MACHINE_CORES = os.cpu_count() or 1


def machine_busy_share(cpu_seconds: float, window_seconds: float) -> float | None:
    """The share of the machine's cores busy over a window, from `machine_cpu_seconds` read
    at both ends (1.0: saturated)."""
    return cpu_seconds / (window_seconds * MACHINE_CORES) if window_seconds else None
