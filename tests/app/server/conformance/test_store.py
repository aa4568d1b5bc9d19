"""The Store API through langgraph-sdk's StoreClient, against PostgreSQL (pgvector) + Redis:
every call, each principal confined to its own namespaces, bad input answered 4xx, TTL, and
search by meaning with the real local embedding model."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from langgraph_sdk.errors import UnprocessableEntityError

from tests.app.server.conformance.sdk_calls import covers
from tests.app.server.conftest import fresh_database, make_settings
from tests.app.server.service import Service, serve_in_thread
from tools.kit.servers import PostgresServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def database(postgres_server: PostgresServer) -> str:
    return fresh_database(postgres_server)


@pytest.fixture
def service(tmp_path: Path, database: str, redis_server: RedisServer) -> Iterator[Service]:
    settings = make_settings(tmp_path, database_url=database, redis_url=redis_server.url)
    with serve_in_thread(settings) as served:
        yield served


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


@covers(
    "store.put_item",
    "store.get_item",
    "store.search_items",
    "store.list_namespaces",
    "store.delete_item",
)
def test_every_store_call_round_trips(service: Service) -> None:
    async def scenario() -> None:
        store = service.client("alice").store
        await store.put_item(["notes", "work"], "n1", {"text": "quarterly report", "n": 1})
        await store.put_item(["notes", "work"], "n2", {"text": "team offsite", "n": 2})
        await store.put_item(["notes", "home"], "n3", {"text": "buy milk", "n": 3})
        await store.put_item(["prefs"], "theme", {"colour": "dark"}, index=False, ttl=60)

        item = await store.get_item(["notes", "work"], "n1")
        assert item is not None
        assert item["namespace"] == ["notes", "work"]
        assert item["key"] == "n1"
        assert item["value"] == {"text": "quarterly report", "n": 1}
        assert datetime.fromisoformat(str(item["created_at"])) <= datetime.now(UTC)

        found = await store.search_items(["notes"], limit=10)
        assert sorted(i["key"] for i in found["items"]) == ["n1", "n2", "n3"]
        filtered = await store.search_items(["notes"], filter={"n": {"$gte": 2}})
        assert sorted(i["key"] for i in filtered["items"]) == ["n2", "n3"]
        page = await store.search_items(["notes"], limit=2, offset=2)
        assert len(page["items"]) == 1

        listed = await store.list_namespaces()
        assert sorted(listed["namespaces"]) == [["notes", "home"], ["notes", "work"], ["prefs"]]
        shallow = await store.list_namespaces(prefix=["notes"], max_depth=1)
        assert shallow["namespaces"] == [["notes"]]
        by_suffix = await store.list_namespaces(suffix=["work"])
        assert by_suffix["namespaces"] == [["notes", "work"]]

        await store.delete_item(["notes", "work"], "n1")
        assert await store.get_item(["notes", "work"], "n1") is None
        # Deleting what is not there succeeds, as in LangGraph's server.
        await store.delete_item(["notes", "work"], "n1")

    _run(scenario())


@covers("store.search_items")
def test_search_ranks_a_paraphrase_above_an_unrelated_memory(service: Service) -> None:
    """The real all-MiniLM-L6-v2 (numpy) embeds, pgvector ranks: no word is shared between
    the query and the memory it must find first."""

    async def scenario() -> None:
        store = service.client("alice").store
        await store.put_item(["memories"], "a", {"text": "I am allergic to peanuts."})
        await store.put_item(["memories"], "b", {"text": "My favourite football team is Arsenal."})
        await store.put_item(["memories"], "c", {"text": "Send invoices to the Leeds office."})
        result = await store.search_items(["memories"], query="Which nuts make me ill?", limit=3)
        keys = [item["key"] for item in result["items"]]
        assert keys[0] == "a", result
        scores = [float(item["score"] or 0.0) for item in result["items"]]
        assert scores == sorted(scores, reverse=True)
        assert scores[0] > scores[1] + 0.1, scores

    _run(scenario())


def test_semantic_search_uses_pgvector(service: Service, database: str) -> None:
    http = service.http("alice")
    http.put("/store/items", json={"namespace": ["m"], "key": "k", "value": {"t": "hello"}})
    with psycopg.connect(database) as conn:
        ext = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
        assert ext is not None
        row = conn.execute(
            "SELECT vector_dims(embedding) FROM store_vectors WHERE prefix = 'users.alice.m'"
        ).fetchone()
    assert row == (384,)


ATTACKER_NAMESPACES: list[list[str]] = [
    ["notes"],
    ["users", "alice", "notes"],
    ["alice", "notes"],
    ["users", "alice"],
    ["%"],
    ["_otes"],
    ["*"],
]


def test_another_principal_cannot_reach_the_items(service: Service) -> None:
    alice, bob = service.http("alice"), service.http("bob")
    assert (
        alice.put(
            "/store/items", json={"namespace": ["notes"], "key": "k", "value": {"secret": "a"}}
        ).status_code
        == 204
    )
    for namespace in ATTACKER_NAMESPACES:
        dotted = ".".join(namespace)
        got = bob.get("/store/items", params={"namespace": dotted, "key": "k"})
        assert (got.status_code, got.json()) == (200, None), namespace
        search = bob.post("/store/items/search", json={"namespace_prefix": namespace})
        assert (search.status_code, search.json()) == (200, {"items": []}), namespace
        semantic = bob.post(
            "/store/items/search", json={"namespace_prefix": namespace, "query": "secret"}
        )
        assert (semantic.status_code, semantic.json()) == (200, {"items": []}), namespace
        listed = bob.post("/store/namespaces", json={"prefix": namespace})
        assert listed.json() == {"namespaces": []}, namespace
        assert (
            bob.request(
                "DELETE", "/store/items", json={"namespace": namespace, "key": "k"}
            ).status_code
            == 204
        )
    assert bob.post("/store/items/search", json={}).json() == {"items": []}
    assert bob.post("/store/namespaces", json={"suffix": ["notes"]}).json() == {"namespaces": []}
    # The same id in bob's space is bob's own item; alice's is untouched by all of the above.
    bob.put("/store/items", json={"namespace": ["notes"], "key": "k", "value": {"secret": "b"}})
    assert bob.get("/store/items", params={"namespace": "notes", "key": "k"}).json()["value"] == {
        "secret": "b"
    }
    assert alice.get("/store/items", params={"namespace": "notes", "key": "k"}).json()["value"] == {
        "secret": "a"
    }


@pytest.mark.parametrize(
    ("method", "path", "payload", "field"),
    [
        ("PUT", "/store/items", {"namespace": [], "key": "k", "value": {}}, "namespace"),
        ("PUT", "/store/items", {"namespace": ["a", ""], "key": "k", "value": {}}, "label 1"),
        ("PUT", "/store/items", {"namespace": ["a.b"], "key": "k", "value": {}}, "'.'"),
        ("PUT", "/store/items", {"namespace": ["x" * 129], "key": "k", "value": {}}, "128"),
        ("PUT", "/store/items", {"namespace": ["a"] * 11, "key": "k", "value": {}}, "at most"),
        ("PUT", "/store/items", {"namespace": ["é" * 100] * 3, "key": "k", "value": {}}, "bytes"),
        ("PUT", "/store/items", {"namespace": ["a\x01"], "key": "k", "value": {}}, "control"),
        ("PUT", "/store/items", {"namespace": ["a"], "key": "", "value": {}}, "key"),
        ("PUT", "/store/items", {"namespace": ["a"], "key": "k" * 1025, "value": {}}, "1024"),
        ("PUT", "/store/items", {"namespace": ["a"], "key": "k", "value": [1]}, "value"),
        ("PUT", "/store/items", {"namespace": ["a"], "key": "k", "value": {}, "ttl": -1}, "ttl"),
        (
            "PUT",
            "/store/items",
            {"namespace": ["a"], "key": "k", "value": {}, "index": True},
            "index",
        ),
        # A wildcard path yields one text per element: the count, not the paths, bounds the
        # model's work (17 texts here; a 1 MiB body would be ~200,000 MiniLM passes).
        (
            "PUT",
            "/store/items",
            {"namespace": ["a"], "key": "k", "value": {"t": ["w"] * 17}, "index": ["t[*]"]},
            "at most 16",
        ),
        # A sub-minute TTL: f"{ttl * 60} seconds" in exponent notation broke PostgreSQL's
        # interval parsing (500); the store keeps whole minutes anyway.
        ("PUT", "/store/items", {"namespace": ["a"], "key": "k", "value": {}, "ttl": 1e-7}, "ttl"),
        ("PUT", "/store/items", {"namespace": ["a"], "key": "k", "value": {}, "ttl": 0.5}, "ttl"),
        # An object condition without operators: LangGraph's store raised on its keys (500).
        ("POST", "/store/items/search", {"filter": {"n": {"x": 1}}}, "$eq"),
        ("POST", "/store/items/search", {"limit": 0}, "limit"),
        ("POST", "/store/items/search", {"offset": -1}, "offset"),
        ("POST", "/store/items/search", {"filter": {"a": {"$regex": "x"}}}, "$regex"),
        ("POST", "/store/items/search", {"query": "q" * 2001}, "query"),
        ("POST", "/store/namespaces", {"max_depth": 0}, "max_depth"),
        ("POST", "/store/namespaces", {"prefix": ["a.b"]}, "prefix"),
        ("DELETE", "/store/items", {"namespace": ["a"], "key": "k" * 2000}, "key"),
    ],
)
def test_bad_input_answers_422_naming_the_problem(
    service: Service, method: str, path: str, payload: dict[str, Any], field: str
) -> None:
    answer = service.http("alice").request(method, path, json=payload)
    assert answer.status_code == 422, answer.text
    assert field in answer.json()["detail"], answer.json()


def test_list_namespaces_with_suffix_and_max_depth(service: Service) -> None:
    # LangGraph matches the suffix on the full namespace and then cuts it at max_depth; the
    # cut namespace no longer ends with the suffix, and the service dropped it.
    http = service.http("alice")
    for namespace in (["a", "b", "c"], ["x", "c"], ["alice", "c"]):
        body = {"namespace": namespace, "key": "k", "value": {"v": 1}, "index": False}
        assert http.put("/store/items", json=body).status_code == 204
    listed = http.post("/store/namespaces", json={"suffix": ["c"], "max_depth": 1}).json()
    assert sorted(listed["namespaces"]) == [["a"], ["alice"], ["x"]]
    listed = http.post("/store/namespaces", json={"suffix": ["b", "c"], "max_depth": 1}).json()
    assert listed["namespaces"] == [["a"]]
    # A suffix reaching into the user's root matches nothing of theirs, cut or not.
    for depth in (None, 1, 2):
        body = {"suffix": ["users", "alice", "x", "c"], "max_depth": depth}
        assert http.post("/store/namespaces", json=body).json() == {"namespaces": []}
        body = {"suffix": ["alice", "x", "c"], "max_depth": depth}
        assert http.post("/store/namespaces", json=body).json() == {"namespaces": []}


def test_bad_get_parameters_answer_422(service: Service) -> None:
    http = service.http("alice")
    for params, field in [
        ({"namespace": "a..b", "key": "k"}, "namespace"),
        ({"namespace": "", "key": "k"}, "namespace"),
        ({"namespace": "a", "key": "k" * 1025}, "key"),
        ({"namespace": "a"}, "key"),
    ]:
        answer = http.get("/store/items", params=params)
        assert answer.status_code == 422, (params, answer.text)
        assert field in answer.json()["detail"]


def test_a_huge_value_is_refused_before_the_store(service: Service) -> None:
    value = {"text": "x" * 2_000_000}
    answer = service.http("alice").put(
        "/store/items", json={"namespace": ["a"], "key": "k", "value": value}
    )
    assert answer.status_code == 413, answer.text


def test_sdk_surfaces_a_422(service: Service) -> None:
    async def scenario() -> None:
        with pytest.raises(UnprocessableEntityError, match="label 0 is empty"):
            await service.client("alice").store.put_item([""], "k", {"a": 1})

    _run(scenario())


def test_ttl_expires_items_and_refresh_extends_them(service: Service, database: str) -> None:
    http = service.http("alice")
    for key in ("short", "kept"):
        body = {"namespace": ["t"], "key": key, "value": {"k": key}, "ttl": 1}
        assert http.put("/store/items", json=body).status_code == 204
    # Expire "short" by moving its deadline into the past (waiting a real minute is no test).
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "UPDATE store SET expires_at = %s WHERE prefix = 'users.alice.t' AND key = 'short'",
            (datetime.now(UTC) - timedelta(seconds=1),),
        )
        before = conn.execute(
            "SELECT expires_at FROM store WHERE prefix = 'users.alice.t' AND key = 'kept'"
        ).fetchone()
    assert before is not None
    assert before[0] is not None
    # A read with refresh_ttl pushes the deadline forward.
    got = http.get("/store/items", params={"namespace": "t", "key": "kept", "refresh_ttl": True})
    assert got.json()["value"] == {"k": "kept"}
    found = http.post("/store/items/search", json={"namespace_prefix": ["t"]}).json()
    # An expired item is gone from reads at once, before any sweep.
    assert [item["key"] for item in found["items"]] == ["kept"]
    assert http.get("/store/items", params={"namespace": "t", "key": "short"}).json() is None
    with psycopg.connect(database, autocommit=True) as conn:
        after = conn.execute(
            "SELECT expires_at FROM store WHERE prefix = 'users.alice.t' AND key = 'kept'"
        ).fetchone()
    assert after is not None
    assert after[0] >= before[0]


def test_semantic_search_is_refused_when_embeddings_are_off(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.create_database(f"svc_{uuid.uuid4().hex[:12]}")
    from agent_service.persistence.migrations import migrate_postgres

    asyncio.run(migrate_postgres(url, embedding_dims=None))
    settings = make_settings(tmp_path, database_url=url, store_embeddings="none")
    with (
        serve_in_thread(settings) as served,
        httpx.Client(
            base_url=served.url, headers={"X-API-Key": "alice-key-0123456789abcdef"}
        ) as http,
    ):
        http.put("/store/items", json={"namespace": ["a"], "key": "k", "value": {"t": "x"}})
        answer = http.post("/store/items/search", json={"query": "x"})
        assert answer.status_code == 422
        assert "STORE_EMBEDDINGS" in answer.json()["detail"]
        assert len(http.post("/store/items/search", json={}).json()["items"]) == 1


def test_gdpr_export_and_delete_include_the_store_items(service: Service) -> None:
    alice, bob = service.http("alice"), service.http("bob")
    for http, value in ((alice, "alice's"), (bob, "bob's")):
        body = {"namespace": ["notes", "deep"], "key": "k", "value": {"text": value}}
        assert http.put("/store/items", json=body).status_code == 204
    exported = alice.get("/users/alice/export").json()
    assert [(i["namespace"], i["value"]) for i in exported["store"]] == [
        (["users", "alice", "notes", "deep"], {"text": "alice's"})
    ]
    deleted = alice.delete("/users/alice").json()["deleted"]
    assert deleted["store_items"] == 1
    assert alice.get("/store/items", params={"namespace": "notes.deep", "key": "k"}).json() is None
    kept = bob.get("/store/items", params={"namespace": "notes.deep", "key": "k"}).json()
    assert kept["value"] == {"text": "bob's"}


def _copying() -> int:
    """The number of the migration that copies the old layout's memories."""
    from agent_service.persistence.schema import POSTGRES_MIGRATIONS

    return next(n for n, sql in enumerate(POSTGRES_MIGRATIONS, 1) if "'memories.%'" in sql)


def test_memories_of_the_old_layout_are_copied_and_found_by_meaning(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """Before this release main_agent kept memories under ("memories", <user>): the migration
    copies them into the user's space (the old rows stay for a rollback) and `migrate` embeds
    them, so the Store API and main_agent's recall find them by meaning."""
    from agent_service.embeddings import store_index
    from agent_service.persistence.migrations import embed_memories, migrate_postgres
    from agent_service.settings import TuningSettings

    url = fresh_database(postgres_server)
    with psycopg.connect(url, autocommit=True) as conn:
        for key, text in (("m1", "I am allergic to peanuts."), ("m2", "I support Arsenal.")):
            conn.execute(
                "INSERT INTO store (prefix, key, value) VALUES ('memories.alice', %s, %s)",
                (key, psycopg.types.json.Jsonb({"text": text, "saved_at": "2026-01-01"})),
            )
        # The database as the previous release left it: the copying migration not applied yet.
        conn.execute("DELETE FROM agent_schema_version WHERE version >= %s", (_copying(),))
    assert asyncio.run(migrate_postgres(url)) >= 1
    index = store_index(TuningSettings())
    assert index is not None
    assert asyncio.run(embed_memories(url, index)) == 2
    assert asyncio.run(embed_memories(url, index)) == 0  # nothing left: cheap on every deploy
    with psycopg.connect(url) as conn:
        old = conn.execute("SELECT count(*) FROM store WHERE prefix = 'memories.alice'")
        assert old.fetchone() == (2,)
    settings = make_settings(tmp_path, database_url=url)
    with serve_in_thread(settings) as served:
        found = served.http("alice").post(
            "/store/items/search",
            json={"namespace_prefix": ["memories"], "query": "food that makes me sick"},
        )
        assert [item["key"] for item in found.json()["items"]] == ["m1", "m2"]
        assert served.http("bob").post("/store/items/search", json={}).json() == {"items": []}


def test_the_embedded_sqlite_backend_serves_the_same_api(sqlite_service: Service) -> None:
    """Without DATABASE_URL: the same routes, the same scoping; semantic search only where
    the Python loads SQLite extensions (sqlite-vec), else `query` is refused naming why."""
    alice, bob = sqlite_service.http("alice"), sqlite_service.http("bob")
    body = {"namespace": ["notes"], "key": "k", "value": {"text": "I am allergic to peanuts"}}
    assert alice.put("/store/items", json=body).status_code == 204
    assert alice.get("/store/items", params={"namespace": "notes", "key": "k"}).json()["value"] == {
        "text": "I am allergic to peanuts"
    }
    assert bob.get("/store/items", params={"namespace": "notes", "key": "k"}).json() is None
    listed = alice.post("/store/namespaces", json={}).json()
    assert listed == {"namespaces": [["notes"]]}
    assert bob.post("/store/namespaces", json={}).json() == {"namespaces": []}
    semantic = alice.post("/store/items/search", json={"query": "nuts that make me ill"})
    if hasattr(sqlite3.Connection, "enable_load_extension"):
        assert [item["key"] for item in semantic.json()["items"]] == ["k"]
    else:
        assert semantic.status_code == 422
        assert "semantic search is off" in semantic.json()["detail"]
