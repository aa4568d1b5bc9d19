"""`make deploy STACK=<stack>` (tools/deploy/pulumi-up.sh): one clear sentence when something
is missing.

The Pulumi CLI cannot be installed on this machine (no registry ships it), so where a test
needs one on PATH it is a stand-in script that records its arguments; everything else (bash,
the real script, the real stack files, make) is what `make deploy` runs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tools.kit.programs import REPO_ROOT

SCRIPT = REPO_ROOT / "tools" / "deploy" / "pulumi-up.sh"
CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
)


def _environment(home: Path, path: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
    env.update(HOME=str(home), PATH=path, **extra)
    return env


def _run(stack: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", str(SCRIPT), stack],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _one_sentence(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].endswith("."), lines[0]
    return lines[0]


@pytest.fixture
def stand_in_pulumi(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pulumi = bin_dir / "pulumi"
    pulumi.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/invoked"\n')
    pulumi.chmod(0o755)
    return bin_dir


def test_missing_pulumi_cli_is_one_sentence_naming_the_install(tmp_path: Path) -> None:
    env = _environment(tmp_path, "/usr/bin:/bin", AWS_PROFILE="deployer")
    assert not any((Path(d) / "pulumi").exists() for d in env["PATH"].split(":"))
    result = _run("dev", env)
    assert result.returncode != 0
    sentence = _one_sentence(result.stderr)
    assert "Pulumi CLI is not installed" in sentence
    assert "https://www.pulumi.com/docs/install/" in sentence


def test_missing_credentials_is_one_sentence_naming_what_to_set(
    tmp_path: Path, stand_in_pulumi: Path
) -> None:
    env = _environment(tmp_path, f"{stand_in_pulumi}:/usr/bin:/bin")
    result = _run("prod", env)
    assert result.returncode != 0
    sentence = _one_sentence(result.stderr)
    assert "no AWS credentials" in sentence
    assert "AWS_PROFILE" in sentence
    assert not (stand_in_pulumi / "invoked").exists()


def test_unknown_stack_lists_the_stacks(tmp_path: Path, stand_in_pulumi: Path) -> None:
    env = _environment(tmp_path, f"{stand_in_pulumi}:/usr/bin:/bin", AWS_PROFILE="deployer")
    result = _run("qa", env)
    assert result.returncode != 0
    sentence = _one_sentence(result.stderr)
    assert "Pulumi.qa.yaml" in sentence
    for stack in ("dev", "staging", "prod"):
        assert stack in sentence


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_with_cli_and_credentials_it_runs_pulumi_up_for_the_stack(
    tmp_path: Path, stand_in_pulumi: Path, stack: str
) -> None:
    env = _environment(tmp_path, f"{stand_in_pulumi}:/usr/bin:/bin", AWS_PROFILE="deployer")
    result = _run(stack, env)
    assert result.returncode == 0, result.stderr
    assert (stand_in_pulumi / "invoked").read_text().split() == ["up", "--stack", stack]


@pytest.mark.parametrize(
    "variable",
    [
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ],
)
def test_each_credential_source_counts(
    tmp_path: Path, stand_in_pulumi: Path, variable: str
) -> None:
    env = _environment(tmp_path, f"{stand_in_pulumi}:/usr/bin:/bin", **{variable: "set"})
    assert _run("dev", env).returncode == 0


def test_a_credentials_file_counts_as_credentials(tmp_path: Path, stand_in_pulumi: Path) -> None:
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("[default]\n")
    env = _environment(tmp_path, f"{stand_in_pulumi}:/usr/bin:/bin")
    assert _run("dev", env).returncode == 0


def _make(*argv: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("STACK", "AGAINST", "MAKEFLAGS")}
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
    assert f"make {verb}: name a stack: STACK=<stack>, one of: dev prod staging." in result.stderr


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
