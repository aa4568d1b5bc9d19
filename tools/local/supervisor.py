"""One process that owns the local environment: it starts the services in order, restarts a
long-running one that dies, and on SIGTERM stops them in reverse order. Its state is in
`run/status.json` for `up`, `status` and `down` to read."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.kit.programs import REPO_ROOT
from tools.local.layout import Layout, Ports
from tools.local.secrets import Credentials
from tools.local.services import (
    Service,
    _as,
    bootstrap_database,
    clean_prometheus_dir,
    create_bucket,
    plan,
)

RESTARTS_PER_MINUTE = 5
STOP_TIMEOUT = 40.0


@dataclass
class Child:
    service: Service
    process: subprocess.Popen[bytes]
    restarts: list[float]


def _user_name(owner: tuple[int, int] | None) -> str:
    return pwd.getpwuid(owner[0] if owner else os.geteuid()).pw_name


class StartupFailed(RuntimeError):
    pass


class Supervisor:
    def __init__(self, layout: Layout, ports: Ports, credentials: Credentials) -> None:
        self.layout = layout
        self.ports = ports
        self.credentials = credentials
        self.children: list[Child] = []
        self.stopping = False
        self.state = "starting"
        self.error = ""

    def _status(self) -> None:
        status: dict[str, Any] = {
            "state": self.state,
            "error": self.error,
            "pid": os.getpid(),
            "services": {
                child.service.name: {
                    "pid": child.process.pid,
                    "running": child.process.poll() is None,
                    "restarts": len(child.restarts),
                    "user": _user_name(child.service.owner),
                }
                for child in self.children
            },
        }
        temporary = self.layout.status.with_suffix(".tmp")
        temporary.write_text(json.dumps(status, indent=2))
        temporary.replace(self.layout.status)

    def _spawn(self, service: Service) -> subprocess.Popen[bytes]:
        log = self.layout.log(service.name).open("ab")
        env = {**os.environ, **service.env} if service.env else None
        process = subprocess.Popen(  # noqa: S603 - the environment's own programs
            service.command,
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_as(service.owner),
        )
        log.close()
        return process

    def _start(self, service: Service) -> None:
        process = self._spawn(service)
        if service.one_shot:
            code = process.wait(timeout=service.ready_timeout)
            if code != 0:
                raise StartupFailed(
                    f"{service.name} exited {code}; see {self.layout.log(service.name)}"
                )
            return
        self.children.append(Child(service, process, []))
        deadline = time.monotonic() + service.ready_timeout
        while not service.ready():
            if self.stopping:
                raise StartupFailed("stopped while starting")
            if process.poll() is not None:
                raise StartupFailed(
                    f"{service.name} exited {process.returncode} while starting; "
                    f"see {self.layout.log(service.name)}"
                )
            if time.monotonic() > deadline:
                raise StartupFailed(f"{service.name} not ready after {service.ready_timeout:.0f} s")
            time.sleep(0.1)
        self._status()

    def _after(self, service: Service) -> None:
        if service.name == "postgres":
            bootstrap_database(self.layout, self.credentials)
        elif service.name == "s3":
            create_bucket(self.ports)

    def _stop_all(self) -> None:
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(child.service.stop_signal)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in reversed(self.children):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()

    def _watch(self) -> None:
        """Restart a service that died, unless it keeps dying."""
        for child in self.children:
            if self.stopping or child.process.poll() is None:
                continue
            now = time.monotonic()
            child.restarts = [t for t in child.restarts if now - t < 60] + [now]
            if len(child.restarts) > RESTARTS_PER_MINUTE:
                self.state = "degraded"
                self.error = (
                    f"{child.service.name} keeps exiting; see {self.layout.log(child.service.name)}"
                )
                continue
            if child.service.name == "agent":
                clean_prometheus_dir(self.layout)
            child.process = self._spawn(child.service)
        self._status()

    def run(self) -> int:
        def request_stop(signum: int, frame: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        self.layout.supervisor_pid.write_text(str(os.getpid()))
        code = 0
        try:
            clean_prometheus_dir(self.layout)
            for service in plan(self.layout, self.ports, self.credentials):
                self._start(service)
                self._after(service)
            self.state = "up"
            self._status()
            while not self.stopping:
                time.sleep(0.5)
                self._watch()
        except Exception as exc:
            self.state, self.error, code = "failed", str(exc), 1
            self._status()
        finally:
            self.stopping = True
            self._stop_all()
            if self.state != "failed":
                self.state = "stopped"
            self._status()
            Path(self.layout.supervisor_pid).unlink(missing_ok=True)
        return code
