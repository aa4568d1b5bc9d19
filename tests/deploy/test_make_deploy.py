"""`make deploy STACK=<stack>` end to end through make and `python -m tools.deploy`: one clear
sentence when something is missing, and with everything in place `pulumi up` with the policy
pack and the phase.

Neither the Pulumi CLI nor the AWS CLI can be installed on this machine (no registry ships
them), so stand-in scripts on PATH answer as they would and record their arguments;
everything else (make, the real runner, its preflight, the real stack files) is what
`make deploy` runs. The preflight's every answer is covered in test_preflight.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.kit.programs import REPO_ROOT

ACCOUNT = "406812953771"
SIMULATION = json.dumps(
    {
        "EvaluationResults": [
            {"EvalActionName": "eks:CreateCluster", "EvalDecision": "allowed"},
        ]
    }
)
# The AWS CLI as an administrator of the account would answer the preflight.
AWS = f"""#!/bin/sh
case "$1 $2" in
  "sts get-caller-identity")
    echo '{{"Account": "{ACCOUNT}", "Arn": "arn:aws:sts::{ACCOUNT}:assumed-role/deployer/me"}}' ;;
  "iam get-role") echo '{{"Role": {{"Arn": "arn:aws:iam::{ACCOUNT}:role/deployer"}}}}' ;;
  "iam simulate-principal-policy") echo '{SIMULATION}' ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
"""
# Records what it was asked and in which phase; `stack output` finds no deployed stack.
PULUMI = """#!/bin/sh
if [ "$1" = stack ]; then echo "error: no stack outputs" >&2; exit 255; fi
echo "$AGENT_PLATFORM_PHASE $*" > "$(dirname "$0")/invoked"
"""


@pytest.fixture
def stand_ins(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in (("aws", AWS), ("pulumi", PULUMI)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _make(*argv: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("STACK", "AGAINST", "PHASE", "MAKEFLAGS", "CI")
    }
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO_ROOT), *argv],
        capture_output=True,
        text=True,
        env={**env, **extra},
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("verb", ["deploy", "plan"])
def test_make_without_a_stack_names_the_stacks(verb: str) -> None:
    result = _make(verb)
    assert result.returncode == 2
    stacks = "dev prod prod-dr staging"
    assert f"make {verb}: name a stack: STACK=<stack>, one of: {stacks}." in result.stderr


@pytest.mark.parametrize("verb", ["deploy", "plan"])
def test_make_with_an_unknown_stack_says_so(verb: str) -> None:
    result = _make(verb, "STACK=qa")
    assert result.returncode == 2
    assert f"make {verb}: no stack 'qa' (no Pulumi.qa.yaml)" in result.stderr


def test_a_stack_in_the_shells_environment_is_not_a_choice() -> None:
    """STACK only counts on the command line: an exported STACK never picks a deploy target."""
    result = _make("deploy", STACK="prod")
    assert result.returncode == 2
    assert "name a stack" in result.stderr


def test_a_cloud_phase_deploy_runs_pulumi_up_with_the_pack(stand_ins: Path) -> None:
    result = _make("deploy", "STACK=dev", "PHASE=cloud", PATH=f"{stand_ins}:{os.environ['PATH']}")
    assert result.returncode == 0, result.stderr
    invoked = (stand_ins / "invoked").read_text().split()
    assert invoked[:6] == ["cloud", "up", "--stack", "dev", "--policy-pack", "policies"]
    # The stack file's budget reaches the pack, as `make plan` hands it over.
    assert invoked[6] == "--policy-pack-config"
    config = json.loads(Path(invoked[7]).read_text())
    assert config["stack-monthly-budget"]["enforcementLevel"] == "advisory"
    assert config["stack-monthly-budget"]["monthlyBudgetUsd"] > 0


def test_without_the_aws_cli_the_deploy_says_so(stand_ins: Path) -> None:
    # The runner itself, not through make: `uv run` puts its interpreter's directories on PATH,
    # and a machine's Python may carry an `aws` there (this one's has AWS CLI v1).
    (stand_ins / "aws").unlink()
    path = f"{stand_ins}:/usr/bin:/bin"
    assert shutil.which("aws", path=path) is None
    result = subprocess.run(
        [sys.executable, "-m", "tools.deploy", "dev", "--phase", "cloud"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    (sentence,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert "the AWS CLI v2 is not installed" in sentence
    assert "aws eks get-token" in sentence
    assert not (stand_ins / "invoked").exists()


# What the documented deploy runners (Amazon Linux 2023, macOS, a non-root user) cannot run:
# the test toolchain's apt packages, npm and go.
TEST_ONLY_INSTALLERS = ("apt-get", "dpkg", "npm", "go", "sudo")


@pytest.mark.parametrize("verb", ["deploy", "plan"])
def test_deploy_and_plan_do_not_install_the_test_toolchain(verb: str) -> None:
    """`make -n` prints what would run: neither verb goes through the `make tools` stamp."""
    result = _make("--dry-run", verb, "STACK=dev")
    assert result.returncode == 0, result.stderr
    installs = [line for line in result.stdout.splitlines() if "install-tools.sh" in line]
    assert installs, result.stdout
    assert all(f"install-tools.sh {verb}" in line for line in installs), installs
    assert ".tools/.stamp" not in result.stdout


def test_the_deploy_install_runs_no_system_installer(tmp_path: Path) -> None:
    """The deploy verb's install syncs the Python groups only: apt, dpkg, npm and go, put on
    PATH as recorders, are never called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    for name in TEST_ONLY_INSTALLERS:
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\nexit 1\n')
        (bin_dir / name).chmod(0o755)
    result = subprocess.run(
        [
            "bash",
            str(REPO_ROOT / "tools" / "install" / "install-tools.sh"),
            "deploy",
            "--no-default-groups",
            "--group",
            "infra",
            "--group",
            "policy",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert not calls.exists(), calls.read_text()


def test_the_install_script_refuses_an_unknown_verb() -> None:
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "tools" / "install" / "install-tools.sh"), "deploi"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown verb deploi" in result.stderr
