"""What a platform engineer checks on a running service, the same way on this machine
(`make smoke`, testinfra's local://) and in a pod (kubectl://<pod>?namespace=<ns>)."""

from __future__ import annotations

import pwd
from typing import Any

import pytest

from tests.smoke.conftest import Target


def test_the_service_runs_and_listens_on_its_port(probe: dict[str, Any], target: Target) -> None:
    assert probe["service"], "no agent-service process found"
    assert target.port in probe["listening"]


def test_ready_answers(probe: dict[str, Any]) -> None:
    assert probe["ready"] == 200


def test_the_service_is_not_root_where_it_can_drop_root(
    probe: dict[str, Any], target: Target
) -> None:
    uids = {process["uid"] for process in probe["service"]}
    assert uids, "no service process of this target found (PORT in its environment)"
    if target.in_pod:
        assert 0 not in uids
        return
    # Locally the supervisor runs it as `nobody` when started by root and the interpreter is
    # reachable, else as the invoking user; status.json records which.
    expected = target.env.get("AGENT_USER") or pwd.getpwuid(min(uids)).pw_name
    assert {pwd.getpwuid(uid).pw_name for uid in uids} == {expected}


def test_no_secret_in_the_process_listing_or_the_logs(
    probe: dict[str, Any], target: Target
) -> None:
    assert target.secrets, "no secret found to look for"
    listing = "\n".join(probe["command_lines"])
    for secret in target.secrets:
        assert secret not in listing
        assert secret not in target.logs


def test_writes_go_to_the_tmp_volume_only(probe: dict[str, Any], target: Target) -> None:
    if target.in_pod:
        assert probe["root_writable"] is False
        assert probe["tmp_writable"] is True
        return
    state = target.env["LOCAL_STATE_DIR"]
    for key in ("SECRETS_DIR", "AGENT_LOG"):
        assert target.env[key].startswith(state)


@pytest.mark.parametrize("program", ["pg_dump", "pg_restore"])
def test_the_backup_programs_are_present(host: Any, target: Target, program: str) -> None:
    bin_dir = target.env.get("PG_BIN_DIR", "")
    found = host.run(f"command -v {program} || test -x {bin_dir}/{program}")
    assert found.rc == 0, f"{program} missing"
