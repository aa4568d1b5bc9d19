"""The shared run queue against a careless or hostile principal: bounds that keep one
principal from starving the others, and a run that keeps killing its workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.server.conftest import fresh_database, make_settings
from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.service import serve_in_thread
from tools.kit.servers import PostgresServer

pytestmark = pytest.mark.integration

LATER = 600.0


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        return {}
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return {"database_url": fresh_database(server)}


def test_one_principal_cannot_fill_the_queue(tmp_path: Path, database: dict[str, str]) -> None:
    settings = make_settings(tmp_path, max_active_runs_per_principal=2, **database)
    with serve_in_thread(settings) as service, service.http("alice") as alice:
        delayed = {"assistant_id": GRAPH_ID, "input": say("later"), "after_seconds": LATER}
        first = alice.post("/runs", json=delayed)
        assert first.status_code == 200, first.text
        assert alice.post("/runs", json=delayed).status_code == 200
        refused = alice.post("/runs", json=delayed)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"] == "too_many_runs"
        assert "MAX_ACTIVE_RUNS_PER_PRINCIPAL" in refused.json()["detail"]
        batch = alice.post("/runs/batch", json=[delayed, delayed])
        assert batch.status_code == 429, batch.text
        assert batch.json()["submitted"] == []
        # The bound is the principal's own: another principal's runs are still taken.
        with service.http("bob") as bob:
            assert bob.post("/runs", json=delayed).status_code == 200
        # A run that ended frees its place.
        run = first.json()
        cancelled = alice.post(
            f"/threads/{run['thread_id']}/runs/{run['run_id']}/cancel", params={"wait": True}
        )
        assert cancelled.status_code == 204, cancelled.text
        assert alice.post("/runs", json=delayed).status_code == 200
