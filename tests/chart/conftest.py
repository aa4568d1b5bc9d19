"""Each ci/ values file is rendered once per session; tests read the shared result."""

from __future__ import annotations

import pytest

from tests.chart.support import ENVS, Rendered, render_env


@pytest.fixture(scope="session")
def minimal() -> Rendered:
    return render_env("minimal")


@pytest.fixture(scope="session")
def dev() -> Rendered:
    return render_env("dev")


@pytest.fixture(scope="session")
def staging() -> Rendered:
    return render_env("staging")


@pytest.fixture(scope="session")
def prod() -> Rendered:
    return render_env("prod")


@pytest.fixture(scope="session", params=ENVS)
def each_env(request: pytest.FixtureRequest) -> tuple[str, Rendered]:
    env: str = request.param
    rendered: Rendered = request.getfixturevalue(env)
    return env, rendered
