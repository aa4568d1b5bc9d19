"""`make tools` leaves working, pinned binaries behind."""

from __future__ import annotations

import re
import subprocess

import pytest

from tools.kit.programs import REPO_ROOT, require_program

INSTALLER = (REPO_ROOT / "tools" / "install" / "install-tools.sh").read_text()


def _pin(name: str) -> str:
    match = re.search(rf'^{name}="([^"]+)"$', INSTALLER, re.MULTILINE)
    assert match, f"{name} is not pinned in tools/install/install-tools.sh"
    return match.group(1)


def test_every_download_is_pinned_with_a_checksum() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", _pin("layer_version"))
    assert _pin("layer_integrity").startswith("sha512-")
    for name in ("layer_zip_sha256", "helm_sha256", "kubectl_sha256"):
        assert re.fullmatch(r"[0-9a-f]{64}", _pin(name)), name


def test_helm_runs_and_is_v3_or_later() -> None:
    out = subprocess.run(
        [require_program("helm"), "version", "--short"], check=True, capture_output=True, text=True
    ).stdout
    major = int(re.match(r"v(\d+)\.", out.strip()).group(1))  # type: ignore[union-attr]
    assert major >= 3, out


def test_kubectl_runs() -> None:
    out = subprocess.run(
        [require_program("kubectl"), "version", "--client"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "Client Version" in out


def test_checkov_is_the_pinned_version() -> None:
    out = subprocess.run(
        [require_program("checkov"), "--version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert out == _pin("checkov_version")


def test_second_run_of_make_tools_is_quiet() -> None:
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "tools" / "install" / "install-tools.sh")],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert result.stdout == ""
    assert result.stderr == ""


@pytest.mark.parametrize("program", ["initdb", "pg_ctl", "postgres", "pg_dump", "redis-server"])
def test_server_programs_are_installed(program: str) -> None:
    require_program(program)
