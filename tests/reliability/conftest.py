"""Reliability drills: the real service on loopback, under load, while its dependencies fail."""

from __future__ import annotations

from typing import Any

from tests.reliability.figures import RESULTS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if RESULTS:
        terminalreporter.section("reliability drills")
        for line in RESULTS:
            terminalreporter.write_line(line)
