"""Each ci/ values file is rendered once per session; tests read the shared result."""

from __future__ import annotations

import pytest

from tests.chart.support import ENVS, Rendered, fixture_name, render_env


@pytest.fixture(scope="session")
def minimal() -> Rendered:
    return render_env("minimal")


@pytest.fixture(scope="session")
def existing_secret() -> Rendered:
    return render_env("existing-secret")


@pytest.fixture(scope="session")
def autoscaled() -> Rendered:
    return render_env("autoscaled")


@pytest.fixture(scope="session")
def canary() -> Rendered:
    return render_env("canary")


@pytest.fixture(scope="session", params=ENVS)
def each_env(request: pytest.FixtureRequest) -> tuple[str, Rendered]:
    env: str = request.param
    rendered: Rendered = request.getfixturevalue(fixture_name(env))
    return env, rendered
