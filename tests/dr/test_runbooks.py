"""Each drill scenario names the runbook it rehearses; the runbook exists, sends the reader
to that scenario, and every one of its shell blocks parses."""

from __future__ import annotations

import re
import subprocess

import pytest

from tools.drill.__main__ import SCENARIOS
from tools.drill.pitr import RUNBOOK as PITR_RUNBOOK
from tools.drill.region import RUNBOOKS as REGION_RUNBOOKS
from tools.drill.run import RUNBOOK as DUMP_RUNBOOK
from tools.kit.programs import REPO_ROOT

NAMED = {"dump": DUMP_RUNBOOK, "pitr": PITR_RUNBOOK, "region-loss": REGION_RUNBOOKS}
SHELL_BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)


def test_every_scenario_names_a_runbook() -> None:
    assert set(NAMED) == set(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_runbook_exists_and_points_at_its_scenario(scenario: str) -> None:
    for path in NAMED[scenario].split(", "):
        text = (REPO_ROOT / path).read_text()
        command = "make dr-drill" if scenario == "dump" else f"make dr-drill SCENARIO={scenario}"
        drill = (REPO_ROOT / "docs/runbooks/drill.md").read_text()
        assert command in text or command in drill, path
        assert f"SCENARIO={scenario}" in text or scenario == "dump", path


@pytest.mark.parametrize(
    "runbook", ["pitr.md", "region-loss.md", "backup-deletion.md", "failover.md"]
)
def test_every_step_is_a_command_that_parses(runbook: str) -> None:
    text = (REPO_ROOT / "docs/runbooks" / runbook).read_text()
    blocks = SHELL_BLOCK.findall(text)
    assert len(blocks) >= 3
    for block in blocks:
        checked = subprocess.run(
            ["bash", "-n"], input=block, text=True, capture_output=True, check=False
        )
        assert checked.returncode == 0, (runbook, checked.stderr, block)


def test_no_runbook_promotes_a_read_replica() -> None:
    for path in (REPO_ROOT / "docs/runbooks").glob("*.md"):
        assert "promote-read-replica" not in path.read_text(), path.name
