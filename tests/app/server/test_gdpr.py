"""GDPR export and delete: everything stored for a user, parameterised SQL, audit-logged."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from langgraph_sdk.errors import NotFoundError, PermissionDeniedError

from tests.app.server.conftest import fresh_database, make_settings
from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.service import Service, serve_in_thread
from tools.kit.servers import PostgresServer

pytestmark = pytest.mark.integration


@pytest.fixture
def admin_service(tmp_path: Path, postgres_server: PostgresServer) -> Iterator[tuple[Service, str]]:
    url = fresh_database(postgres_server)
    settings = make_settings(tmp_path, database_url=url, admin_principals="bob")
    with serve_in_thread(settings) as service:
        yield service, url


def test_export_then_delete_everything_of_a_user(admin_service: tuple[Service, str]) -> None:
    service, url = admin_service

    async def scenario() -> list[str]:
        alice, bob = service.client("alice"), service.client("bob")
        threads = [await alice.threads.create(metadata={"n": i}) for i in range(2)]
        for thread in threads:
            await alice.runs.wait(
                thread["thread_id"],
                GRAPH_ID,
                input=say("my data"),
            )
        await alice.crons.create_for_thread(threads[0]["thread_id"], GRAPH_ID, schedule="@daily")
        await alice.crons.create(GRAPH_ID, schedule="@weekly")
        bob_thread = await bob.threads.create()
        await bob.crons.create(GRAPH_ID, schedule="@weekly")
        await bob.runs.wait(
            bob_thread["thread_id"],
            GRAPH_ID,
            input=say("bob's"),
        )

        exported = await alice.http.get("/users/alice/export")
        assert {t["thread_id"] for t in exported["threads"]} == {t["thread_id"] for t in threads}
        assert all(t["checkpoints"] for t in exported["threads"])
        assert [item["namespace"] for item in exported["store"]] == [["memories", "alice"]]
        assert exported["store"][0]["value"] == {"text": "my data"}
        assert len(exported["runs"]) == 2
        assert sorted(c["schedule"] for c in exported["crons"]) == ["@daily", "@weekly"]
        assert "bob's" not in str(exported)

        # A principal may not act on someone else's data; an admin may.
        with pytest.raises(PermissionDeniedError, match="needs role 'admin'"):
            await alice.http.get("/users/bob/export")
        assert (await bob.http.get("/users/alice/export"))["user_id"] == "alice"

        await alice.http.delete("/users/alice")
        for thread in threads:
            with pytest.raises(NotFoundError):
                await alice.threads.get(thread["thread_id"])
        after = await alice.http.get("/users/alice/export")
        assert (after["threads"], after["runs"], after["store"], after["crons"]) == ([], [], [], [])
        assert [entry["action"] for entry in after["audit"]] == [
            "gdpr.export",
            "gdpr.export",
            "gdpr.delete",
            "gdpr.export",
        ]
        assert after["audit"][2]["detail"] == {
            "threads": 2,
            "runs": 2,
            "store_items": 1,
            "assistants": 0,
            "crons": 2,
        }
        assert await alice.crons.count() == 0
        assert await bob.crons.count() == 1
        # Bob's data is untouched.
        assert (await bob.threads.get_state(bob_thread["thread_id"]))["values"]
        return [t["thread_id"] for t in threads]

    deleted = asyncio.run(scenario())
    with psycopg.connect(url) as conn:
        for table in ("checkpoints", "checkpoint_writes", "checkpoint_blobs"):
            count = conn.execute(
                f"SELECT count(*) FROM {table} WHERE thread_id = ANY(%s)", (deleted,)
            ).fetchone()
            assert count == (0,), table
        assert conn.execute(
            "SELECT count(*) FROM store WHERE prefix LIKE 'memories.alice%'"
        ).fetchone() == (0,)


def test_gdpr_on_sqlite(sqlite_service: Service) -> None:
    async def scenario() -> None:
        alice = sqlite_service.client("alice")
        thread = await alice.threads.create()
        await alice.runs.wait(thread["thread_id"], GRAPH_ID, input=say("x"))
        assert len((await alice.http.get("/users/alice/export"))["threads"]) == 1
        await alice.http.delete("/users/alice")
        after = await alice.http.get("/users/alice/export")
        assert (after["threads"], after["store"]) == ([], [])

    asyncio.run(scenario())
