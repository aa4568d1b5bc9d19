"""podman as this kind of machine needs it: runc, and ulimits the process may set.

runc, not crun: crun 1.8 (Debian 12) refuses this VM's hybrid cgroup layout. default_ulimits:
podman asks for nofile/nproc 1048576 unless containers.conf says otherwise
(https://docs.podman.io/en/latest/markdown/options/ulimit.html), and raising a limit needs
CAP_SYS_RESOURCE, which the VM withholds; so the limits are the ones this process already has,
nproc capped at the kernel's pid_max (measured: runc's init refuses more, conmon runs with it).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path
from typing import Any

from tools.kit.programs import MissingProgram, require_program

PID_MAX = Path("/proc/sys/kernel/pid_max")


class PodmanError(RuntimeError):
    pass


def containers_conf(path: Path) -> Path:
    """Write the containers.conf every podman call of this package uses; return its path."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    pid_max = int(PID_MAX.read_text()) if PID_MAX.exists() else nproc
    limits = [("nofile", nofile), ("nproc", min(nproc, pid_max))]
    ulimits = ", ".join(
        f'"{name}={value}:{value}"' for name, value in limits if value != resource.RLIM_INFINITY
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by tools/image: see tools/image/podman.py for why.\n"
        f"[containers]\ndefault_ulimits = [{ulimits}]\n\n"
        '[engine]\nruntime = "runc"\n'
    )
    return path


class Podman:
    def __init__(self, conf: Path) -> None:
        try:
            self.binary = require_program("podman")
        except MissingProgram as missing:
            raise PodmanError(str(missing)) from missing
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def argv(self, *args: str) -> list[str]:
        return [self.binary, *args]

    def run(
        self, *args: str, check: bool = True, timeout: float | None = None, quiet: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(  # noqa: S603 - podman, arguments from this package
            self.argv(*args),
            env=self.env,
            capture_output=quiet,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            detail = (result.stderr or "")[-2000:] if quiet else ""
            raise PodmanError(f"podman {' '.join(args[:2])} failed ({result.returncode}): {detail}")
        return result

    def exists(self, ref: str) -> bool:
        return self.run("image", "exists", ref, check=False).returncode == 0

    def inspect(self, ref: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = json.loads(self.run("image", "inspect", ref).stdout)
        return found[0]
