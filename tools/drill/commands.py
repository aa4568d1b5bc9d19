"""The drill takes its backup and restores it with the service's own commands, as an operator
(or the CronJob) runs them: `agent-service backup` and `agent-service restore`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from agent_service.dr.errors import DrError
from agent_service.dr.storage import Manifest

COMMAND_TIMEOUT = 3600


def agent_service(command: str, *argv: str, env: Mapping[str, str]) -> dict[str, Any]:
    """Run `agent-service <command>`; its last stdout line is its JSON report."""
    try:
        result = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-m", "agent_service.cli", command, *argv],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DrError(f"agent-service {command} did not finish in {COMMAND_TIMEOUT} s") from None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise DrError(
            f"agent-service {command} exited {result.returncode}: "
            f"{lines[-1] if lines else 'no message'}"
        )
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def take_backup(env: Mapping[str, str]) -> Manifest:
    report = agent_service("backup", env=env)
    return Manifest(**{item.name: report[item.name] for item in fields(Manifest)})


def restore_into(env: Mapping[str, str], target_url: str, key: str | None) -> dict[str, Any]:
    """Restore `key`, or the newest complete backup, into a new database at `target_url`."""
    chosen = ["--key", key] if key else []
    return agent_service("restore", *chosen, "--target-url", target_url, "--create", env=env)
