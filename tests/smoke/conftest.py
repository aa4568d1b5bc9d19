"""Where the smoke suite looks: SMOKE_ENV_FILE (the local environment's `.local/env`, or a file
describing a pod: SMOKE_SECRETS_DIR, SMOKE_PORT), and the testinfra host given by --hosts
(`local://` by default; `kubectl://<pod>?namespace=<ns>` for a deployment; `podman://<container>`
for a container of the image, as tests/image runs it)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tools.local.envfile import read_env_file

PROBE = Path(__file__).with_name("probe.py")


@dataclass(frozen=True)
class Target:
    env: dict[str, str]
    in_pod: bool
    port: int
    secrets: list[str]
    logs: str


def _pod_logs(backend: Any) -> str:
    if backend.NAME == "podman":
        logs = ["podman", "logs", backend.name]
    else:
        namespace = getattr(backend, "namespace", None) or "default"
        logs = ["kubectl", "logs", backend.name, "-n", namespace, "--all-containers"]
    result = subprocess.run(logs, capture_output=True, text=True, check=True)
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def target(host: Any) -> Target:
    env = read_env_file(Path(os.environ["SMOKE_ENV_FILE"]))
    # A podman container of the image is what a pod runs: same user, read-only root, /tmp volume.
    in_pod = host.backend.NAME in ("kubectl", "podman")
    port = int(env.get("SMOKE_PORT") or env.get("AGENT_URL", "http://x:8000").rsplit(":", 1)[1])
    secrets_dir = env.get("SMOKE_SECRETS_DIR") or env.get(
        "SECRETS_DIR", "/run/secrets/agent-service"
    )
    listing = host.run(f"ls -1 {shlex.quote(secrets_dir)}")
    secrets: list[str] = []
    for name in listing.stdout.split():
        content = host.file(f"{secrets_dir}/{name}").content_string.strip()
        if name == "api_keys":
            secrets += [str(v) for v in json.loads(content).values()]
        elif content:
            secrets.append(content)
    logs = _pod_logs(host.backend) if in_pod else Path(env["AGENT_LOG"]).read_text(errors="replace")
    return Target(env=env, in_pod=in_pod, port=port, secrets=secrets, logs=logs)


@pytest.fixture(scope="module")
def probe(host: Any, target: Target) -> dict[str, Any]:
    python = "python3" if host.exists("python3") else "python"
    script = shlex.quote(PROBE.read_text())
    result = host.run(f"SMOKE_PORT={target.port} {python} -c {script}")
    assert result.rc == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer
