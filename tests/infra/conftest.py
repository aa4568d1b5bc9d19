"""Fixtures: the stack under test, its offline run and its typed config."""

from __future__ import annotations

import pytest

from infra.config import StackConfig
from tests.infra.support import STACKS, offline_run, stack_config
from tools.plan.offline import OfflineRun


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def run(stack: str) -> OfflineRun:
    return offline_run(stack)


@pytest.fixture
def config(stack: str) -> StackConfig:
    return stack_config(stack)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """pulumi_aws warns about its own deprecated S3 classes on import; not ours to fix."""
    for item in items:
        if "tests/infra/" in str(item.path):
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws"))
