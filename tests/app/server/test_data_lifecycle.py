"""A delete removes everything and nothing comes back: not from a run still going, not to the
next principal that creates the same thread id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.app.server.conftest import fresh_database, make_settings
from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.service import Service, serve_in_thread
from tests.support.servers import PostgresServer

pytestmark = pytest.mark.integration

SECRET = "my secret is swordfish"
THREAD = "alice-thread-x"
RUN_DELAY = 1.5


async def _until_busy(client: LangGraphClient, thread_id: str) -> None:
    for _ in range(200):
        if (await client.threads.get(thread_id))["status"] == "busy":
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the run never started")


async def _delete_while_running_then_reuse(alice_side: Service, other_side: Service) -> str:
    """Alice's run is in flight when she deletes her data (through `other_side`); Bob then
    creates the same thread id. Returns everything Bob can read of it."""
    alice, bob = alice_side.client("alice"), other_side.client("bob")
    await alice.threads.create(thread_id=THREAD, metadata={"graph_id": GRAPH_ID})
    run = asyncio.create_task(
        alice.runs.wait(
            THREAD, GRAPH_ID, input=say(SECRET), config={"configurable": {"delay": RUN_DELAY}}
        )
    )
    await _until_busy(alice, THREAD)
    await other_side.client("alice").http.delete("/users/alice")
    await bob.threads.create(thread_id=THREAD, metadata={"graph_id": GRAPH_ID})
    # Past the moment Alice's run would have written its answer.
    await asyncio.wait({run}, timeout=RUN_DELAY + 10)
    assert run.done()
    run.exception() if not run.cancelled() else None
    seen = [
        await bob.threads.get(THREAD),
        await bob.threads.get_state(THREAD),
        await bob.threads.get_history(THREAD),
    ]
    return json.dumps(seen)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_reused_thread_id_never_shows_a_deleted_users_data(
    request: pytest.FixtureRequest, backend: str
) -> None:
    fixture = "pg_service" if backend == "postgres" else "sqlite_service"
    service: Service = request.getfixturevalue(fixture)
    seen = asyncio.run(_delete_while_running_then_reuse(service, service))
    assert "swordfish" not in seen


@pytest.fixture
def two_replicas(
    tmp_path: Path, postgres_server: PostgresServer
) -> Iterator[tuple[Service, Service, str]]:
    url = fresh_database(postgres_server)
    with (
        serve_in_thread(make_settings(tmp_path / "a", database_url=url)) as first,
        serve_in_thread(make_settings(tmp_path / "b", database_url=url)) as second,
    ):
        yield first, second, url


def test_a_run_on_another_replica_writes_nothing_after_its_user_is_deleted(
    two_replicas: tuple[Service, Service, str],
) -> None:
    first, second, url = two_replicas
    # The run goes on `first`; the delete and Bob's new thread go through `second`, which
    # cannot cancel the run: its checkpointer must refuse to write for it.
    seen = asyncio.run(_delete_while_running_then_reuse(first, second))
    assert "swordfish" not in seen
    with psycopg.connect(url) as conn:
        for table in ("checkpoints", "checkpoint_writes", "checkpoint_blobs"):
            rows = conn.execute(
                f"SELECT count(*) FROM {table} WHERE thread_id = %s",
                (THREAD,),
            ).fetchone()
            assert rows == (0,), table
        store = conn.execute(
            "SELECT count(*) FROM store WHERE prefix LIKE %s", ("%alice%",)
        ).fetchone()
        assert store == (0,)
