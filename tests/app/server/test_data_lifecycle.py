"""A delete removes everything and nothing comes back: not from a run still going, not to the
next principal that creates the same thread id."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from agent_service.persistence.retention import apply_retention
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.app.server.conftest import fresh_database, make_settings
from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.service import KEYS, Service, serve_in_thread
from tools.kit.servers import PostgresServer

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


@pytest.fixture
def namespace_users(tmp_path: Path) -> Iterator[Service]:
    keys = {**KEYS, "memories": "memories-key-0123456789ab", "usage": "usage-key-0123456789abcd"}
    with serve_in_thread(make_settings(tmp_path, api_keys=keys)) as service:
        yield service


def test_a_user_named_like_a_namespace_reaches_only_their_own_data(
    namespace_users: Service,
) -> None:
    service = namespace_users
    keys = {"memories": "memories-key-0123456789ab", "usage": "usage-key-0123456789abcd"}

    async def remember(principal: str, text: str) -> None:
        client = get_client(url=service.url, api_key=keys.get(principal) or KEYS[principal])
        await client.runs.wait(None, GRAPH_ID, input=say(text))

    async def scenario() -> None:
        await remember("alice", "alice's memory")
        await remember("bob", "bob's memory")
        await remember("memories", "the user called memories")

    asyncio.run(scenario())
    with httpx.Client(base_url=service.url, headers={"X-API-Key": keys["memories"]}) as http:
        exported = http.get("/users/memories/export").json()
        assert [item["namespace"] for item in exported["store"]] == [["memories", "memories"]]
        deleted = http.delete("/users/memories").json()["deleted"]
        assert deleted["store_items"] == 1
    with service.http("alice") as alice:
        store = alice.get("/users/alice/export").json()["store"]
        assert [item["value"]["text"] for item in store] == ["alice's memory"]


def test_a_principal_name_no_store_namespace_can_hold_is_refused_at_start(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match=r"'team\.carol' is not a valid name"):
        make_settings(tmp_path, api_keys={"team.carol": "carol-key-0123456789abcdef"})


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_an_expired_lease_frees_the_thread_of_a_run_that_died(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    """A SIGKILL mid-run leaves the thread `busy` and the run `running`; once the lease has
    expired every reader treats the thread as free (simulated here by expiring it in SQL)."""
    overrides: dict[str, Any] = {}
    if backend == "postgres":
        overrides["database_url"] = fresh_database(request.getfixturevalue("postgres_server"))
    settings = make_settings(tmp_path, **overrides)
    with serve_in_thread(settings) as service, service.http() as http:
        thread_id = http.post("/threads", json={}).json()["thread_id"]
        run = http.post(
            f"/threads/{thread_id}/runs/wait", json={"assistant_id": GRAPH_ID, "input": say("x")}
        )
        run_id = run.headers["content-location"].rsplit("/", 1)[1]
        _kill_mid_run(settings.database_url, tmp_path / "service.sqlite", thread_id, run_id)
        assert http.get(f"/threads/{thread_id}").json()["status"] == "error"
        assert http.get(f"/threads/{thread_id}/runs/{run_id}").json()["status"] == "error"
        assert http.delete(f"/threads/{thread_id}").status_code == 204


def _kill_mid_run(url: str | None, sqlite_path: Path, thread_id: str, run_id: str) -> None:
    """What a SIGKILL mid-run leaves behind, with its lease already expired."""
    if url is not None:
        with psycopg.connect(url) as conn:
            conn.execute(
                "UPDATE agent_threads SET status = 'busy', active_run_id = %s, "
                "lease_expires_at = now() - interval '1 second' WHERE thread_id = %s",
                (run_id, thread_id),
            )
            conn.execute("UPDATE agent_runs SET status = 'running' WHERE run_id = %s", (run_id,))
        return
    with sqlite3.connect(sqlite_path) as conn:
        conn.execute(
            "UPDATE agent_threads SET status = 'busy', active_run_id = ?, "
            "lease_expires_at = ? WHERE thread_id = ?",
            (run_id, time.time() - 1, thread_id),
        )
        conn.execute("UPDATE agent_runs SET status = 'running' WHERE run_id = ?", (run_id,))


def test_retention_takes_a_thread_whose_dead_run_left_it_busy(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = fresh_database(postgres_server)
    with serve_in_thread(make_settings(tmp_path, database_url=url)) as service:
        with service.http() as http:
            thread_id = http.post("/threads", json={}).json()["thread_id"]
        _kill_mid_run(url, tmp_path, thread_id, "dead-run")
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE agent_threads SET updated_at = now() - interval '10 days' WHERE thread_id = %s",
            (thread_id,),
        )
    result = asyncio.run(
        apply_retention(make_settings(tmp_path, database_url=url), 5, dry_run=False)
    )
    assert result["threads_deleted"] == 1
