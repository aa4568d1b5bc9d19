"""runs.* of langgraph-sdk's async client against PostgreSQL + Redis: background runs on the
durable queue (create, batch, get, list, join, cancel, cancel_many, delete), delayed runs, a
failing run as a run with status "error", and the four double-texting strategies as
LangGraph's documentation describes them
(https://docs.langchain.com/langsmith/double-texting: reject keeps only the first run;
enqueue runs the second after it; interrupt halts the first, keeping its progress, status
`interrupted`; rollback deletes the first run and what it wrote, then runs the second)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from agent_service.runs.webhooks import sign
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from tests.app.runs.test_webhooks import SECRET, Receiver
from tests.app.server.conformance.sdk_calls import covers
from tests.app.server.conftest import fresh_database, make_settings
from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.service import Service, serve_in_thread
from tools.kit.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.integration

SLOW: Any = {"configurable": {"delay": 2.0}}


@pytest.fixture
def service(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> Iterator[Service]:
    settings = make_settings(
        tmp_path,
        database_url=fresh_database(postgres_server),
        redis_url=redis_server.url,
        run_queue_poll_seconds=0.1,
    )
    with serve_in_thread(settings) as running:
        yield running


def _texts(values: Any) -> list[str]:
    return [m["content"] for m in values["messages"]]


async def _until_checkpointed(client: Any, tid: str, text: str) -> None:
    """Until the running run has checkpointed its input (its progress a cancel keeps)."""
    for _ in range(500):
        values: Any = (await client.threads.get_state(tid))["values"]
        if isinstance(values, dict) and text in _texts({"messages": values.get("messages", [])}):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{text!r} never reached the thread's state")


@covers("runs.create", "runs.get", "runs.join", "runs.list")
def test_background_run_create_join_list(service: Service) -> None:
    async def scenario() -> None:
        client = service.client()
        tid = (await client.threads.create())["thread_id"]
        run = await client.runs.create(
            tid, GRAPH_ID, input=say("background"), metadata={"tag": "bg"}
        )
        # Answered at once, before any worker ran it.
        assert run["status"] in ("pending", "running")
        assert run["thread_id"] == tid
        assert run["assistant_id"] == GRAPH_ID
        assert run["metadata"] == {"tag": "bg"}
        joined = await client.runs.join(tid, run["run_id"])
        assert _texts(joined) == ["background", "echo: background"]
        done = await client.runs.get(tid, run["run_id"])
        assert done["status"] == "success"
        second = await client.runs.create(tid, GRAPH_ID, input=say("again"))
        await client.runs.join(tid, second["run_id"])
        listed = await client.runs.list(tid)
        assert [r["run_id"] for r in listed] == [second["run_id"], run["run_id"]]
        assert [r["run_id"] for r in await client.runs.list(tid, limit=1, offset=1)] == [
            run["run_id"]
        ]
        assert await client.runs.list(tid, status="pending") == []
        assert len(await client.runs.list(tid, status="success")) == 2
        # Another principal sees neither the thread's runs nor the run.
        bob = service.client("bob")
        with pytest.raises(NotFoundError):
            await bob.runs.get(tid, run["run_id"])
        with pytest.raises(NotFoundError):
            await bob.runs.list(tid)
        # join reads the answer itself (request_reconnect): httpx's error, with the status.
        with pytest.raises(httpx.HTTPStatusError) as joined_by_bob:
            await bob.runs.join(tid, run["run_id"])
        assert joined_by_bob.value.response.status_code == 404

    asyncio.run(scenario())


@covers("runs.create")
def test_stateless_background_run(service: Service) -> None:
    async def scenario() -> None:
        client = service.client()
        run = await client.runs.create(None, GRAPH_ID, input=say("stateless"), on_completion="keep")
        joined = await client.runs.join(run["thread_id"], run["run_id"])
        assert _texts(joined) == ["stateless", "echo: stateless"]
        state = await client.threads.get_state(run["thread_id"])
        assert _texts(state["values"]) == ["stateless", "echo: stateless"]
        # The default on_completion ("delete") still lets its client join it after the end.
        default = await client.runs.create(None, GRAPH_ID, input=say("deleted later"))
        joined = await client.runs.join(default["thread_id"], default["run_id"])
        assert _texts(joined) == ["deleted later", "echo: deleted later"]

    asyncio.run(scenario())


@covers("runs.create_batch")
def test_create_batch(service: Service) -> None:
    async def scenario() -> None:
        client = service.client()
        tids = [(await client.threads.create())["thread_id"] for _ in range(2)]
        batch: Any = [
            {"thread_id": tids[0], "assistant_id": GRAPH_ID, "input": say("one")},
            {"thread_id": tids[1], "assistant_id": GRAPH_ID, "input": say("two")},
        ]
        runs = await client.runs.create_batch(batch)
        assert [r["thread_id"] for r in runs] == tids
        outputs = [await client.runs.join(r["thread_id"], r["run_id"]) for r in runs]
        assert [_texts(o)[-1] for o in outputs] == ["echo: one", "echo: two"]
        refused: Any = [
            {"thread_id": tids[0], "assistant_id": GRAPH_ID, "input": say("ok")},
            {"thread_id": "no-such-thread", "assistant_id": GRAPH_ID, "input": say("x")},
        ]
        with pytest.raises(NotFoundError, match=r"runs\[1\]"):
            await client.runs.create_batch(refused)

    asyncio.run(scenario())


@covers("runs.wait", "runs.join")
def test_a_failing_run_is_a_run_with_status_error(service: Service) -> None:
    # `delay` that is not a number fails the graph's `respond` node.
    broken: Any = {"configurable": {"delay": "not-a-number"}}

    async def scenario() -> None:
        client = service.client()
        tid = (await client.threads.create())["thread_id"]
        created: list[Any] = []
        result = await client.runs.wait(
            tid,
            GRAPH_ID,
            input=say("fail"),
            config=broken,
            raise_error=False,
            on_run_created=created.append,
        )
        assert isinstance(result, dict)
        assert result["__error__"]["error"] == "ValueError"
        run: Any = await client.runs.get(tid, created[0]["run_id"])
        assert run["status"] == "error"
        assert "ValueError" in run["error"]
        with pytest.raises(Exception, match="ValueError"):
            await client.runs.wait(tid, GRAPH_ID, input=say("fail"), config=broken)
        background = await client.runs.create(tid, GRAPH_ID, input=say("fail"), config=broken)
        joined = await client.runs.join(tid, background["run_id"])
        assert joined["__error__"]["message"].startswith("the run failed (ValueError)")
        assert (await client.runs.get(tid, background["run_id"]))["status"] == "error"

    asyncio.run(scenario())


@covers("runs.create")
def test_after_seconds_delays_the_start(service: Service) -> None:
    async def scenario() -> None:
        client = service.client()
        tid = (await client.threads.create())["thread_id"]
        run = await client.runs.create(tid, GRAPH_ID, input=say("later"), after_seconds=1)
        await asyncio.sleep(0.5)
        assert (await client.runs.get(tid, run["run_id"]))["status"] == "pending"
        assert (await client.threads.get_state(tid))["values"] == {}
        joined = await client.runs.join(tid, run["run_id"])
        assert _texts(joined) == ["later", "echo: later"]

    asyncio.run(scenario())


@covers("runs.cancel")
def test_cancel_interrupt_keeps_progress(service: Service) -> None:
    async def scenario() -> None:
        client = service.client()
        tid = (await client.threads.create())["thread_id"]
        run = await client.runs.create(tid, GRAPH_ID, input=say("slow"), config=SLOW)
        await _until_checkpointed(client, tid, "slow")
        await client.runs.cancel(tid, run["run_id"], wait=True, action="interrupt")
        assert (await client.runs.get(tid, run["run_id"]))["status"] == "interrupted"
        # What the run checkpointed before the cancel stays: its input, not the reply.
        state = await client.threads.get_state(tid)
        assert _texts(state["values"]) == ["slow"]
        assert (await client.threads.get(tid))["status"] == "idle"
        with pytest.raises(ConflictError, match="has ended"):
            await client.runs.cancel(tid, run["run_id"])

    asyncio.run(scenario())


@covers("runs.cancel")
def test_cancel_rollback_deletes_the_run_and_its_checkpoints(service: Service) -> None:
    async def scenario() -> None:
        client = service.client()
        tid = (await client.threads.create())["thread_id"]
        await client.runs.wait(tid, GRAPH_ID, input=say("kept"))
        run = await client.runs.create(tid, GRAPH_ID, input=say("undone"), config=SLOW)
        await _until_checkpointed(client, tid, "undone")
        await client.runs.cancel(tid, run["run_id"], wait=True, action="rollback")
        with pytest.raises(NotFoundError):
            await client.runs.get(tid, run["run_id"])
        state = await client.threads.get_state(tid)
        assert _texts(state["values"]) == ["kept", "echo: kept"]
        history = await client.threads.get_history(tid, limit=100)
        assert all((h["metadata"] or {}).get("run_id") != run["run_id"] for h in history)

    asyncio.run(scenario())


@covers("runs.cancel_many")
def test_cancel_many_pending(service: Service) -> None:
    async def scenario() -> None:
        client = service.client()
        tid = (await client.threads.create())["thread_id"]
        delayed = [
            await client.runs.create(
                tid, GRAPH_ID, input=say(f"d{i}"), after_seconds=60, multitask_strategy="enqueue"
            )
            for i in range(2)
        ]
        other = (await client.threads.create())["thread_id"]
        untouched = await client.runs.create(other, GRAPH_ID, input=say("x"), after_seconds=60)
        await client.runs.cancel_many(thread_id=tid, status="pending")
        for run in delayed:
            assert (await client.runs.get(tid, run["run_id"]))["status"] == "interrupted"
        assert (await client.runs.get(other, untouched["run_id"]))["status"] == "pending"
        await client.runs.cancel_many(run_ids=[untouched["run_id"]], action="rollback")
        with pytest.raises(NotFoundError):
            await client.runs.get(other, untouched["run_id"])

    asyncio.run(scenario())


@covers("runs.delete")
def test_delete_run(service: Service) -> None:
    async def scenario() -> None:
        client = service.client()
        tid = (await client.threads.create())["thread_id"]
        slow = await client.runs.create(tid, GRAPH_ID, input=say("slow"), config=SLOW)
        with pytest.raises(ConflictError, match="cancel it before deleting"):
            await client.runs.delete(tid, slow["run_id"])
        await client.runs.join(tid, slow["run_id"])
        await client.runs.delete(tid, slow["run_id"])
        with pytest.raises(NotFoundError):
            await client.runs.get(tid, slow["run_id"])
        assert await client.runs.list(tid) == []

    asyncio.run(scenario())


@covers("runs.create", "runs.wait")
def test_webhook_is_checked_at_creation_and_called_on_completion(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    receiver = Receiver("127.0.0.1")
    server = receiver.serve()
    settings = make_settings(
        tmp_path,
        database_url=fresh_database(postgres_server),
        webhook_allowed_hosts="127.0.0.1",
        webhook_allow_http=True,
        webhook_allow_private_networks=True,
        webhook_signing_secret=SECRET,
    )
    hook = f"http://127.0.0.1:{receiver.port}/done"
    created: list[str] = []

    async def scenario(service: Service) -> None:
        client = service.client()
        tid = (await client.threads.create())["thread_id"]
        run = await client.runs.create(tid, GRAPH_ID, input=say("hook"), webhook=hook)
        created.append(run["run_id"])
        await client.runs.join(tid, run["run_id"])
        await client.runs.wait(tid, GRAPH_ID, input=say("inline"), webhook=hook)
        with pytest.raises(UnprocessableEntityError, match="not in WEBHOOK_ALLOWED_HOSTS"):
            await client.runs.create(
                tid, GRAPH_ID, input=say("x"), webhook="http://elsewhere.test/x"
            )
        for _ in range(200):
            if len(receiver.received) == 2:
                break
            await asyncio.sleep(0.05)

    try:
        with serve_in_thread(settings) as service:
            asyncio.run(scenario(service))
    finally:
        server.shutdown()
        server.server_close()
    assert [r.path for r in receiver.received] == ["/done", "/done"]
    first, second = (json.loads(r.body) for r in receiver.received)
    assert (first["run_id"], first["status"]) == (created[0], "success")
    assert _texts(first["values"]) == ["hook", "echo: hook"]
    assert _texts(second["values"])[-1] == "echo: inline"
    headers = receiver.received[0].headers
    assert headers["webhook-signature"] == sign(
        SECRET.encode(),
        headers["webhook-id"],
        int(headers["webhook-timestamp"]),
        receiver.received[0].body,
    )


@covers("runs.join_stream")
def test_join_stream_from_another_replica_resumes_after_last_event_id(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    # Two instances on one database and one Redis: `worker` executes the run, `other` (no
    # workers of its own) streams it to the client.
    shared = {
        "database_url": fresh_database(postgres_server),
        "redis_url": redis_server.url,
        "run_queue_poll_seconds": 0.1,
    }

    async def scenario(worker: Service, other: Service) -> None:
        client = worker.client()
        follower = other.client()
        tid = (await client.threads.create())["thread_id"]
        run = await client.runs.create(
            tid,
            GRAPH_ID,
            input=say("streamed"),
            stream_mode=["values", "updates", "custom"],
            stream_resumable=True,
            config={"configurable": {"delay": 0.5}},
        )
        rid = run["run_id"]
        parts = [p async for p in follower.runs.join_stream(tid, rid)]
        names = [p.event for p in parts]
        assert names[0] == "metadata"
        assert parts[0].data["run_id"] == rid
        assert {"values", "updates", "custom"} <= set(names)
        assert parts[-1].event == "values"
        assert _texts(parts[-1].data) == ["streamed", "echo: streamed"]
        assert all(p.id for p in parts)
        # Reconnecting with the id of the third event replays only what came after it.
        resumed = [p async for p in follower.runs.join_stream(tid, rid, last_event_id=parts[2].id)]
        assert [(p.event, p.id) for p in resumed] == [(p.event, p.id) for p in parts[3:]]
        everything = [p async for p in follower.runs.join_stream(tid, rid, last_event_id="-1")]
        assert [p.id for p in everything] == [p.id for p in parts]
        with pytest.raises(UnprocessableEntityError, match="Last-Event-ID"):
            async for _ in follower.runs.join_stream(tid, rid, last_event_id="$"):
                pass
        only = [p async for p in follower.runs.join_stream(tid, rid, stream_mode="updates")]
        assert {p.event for p in only} == {"metadata", "updates"}
        # A run that was not resumable streams only what comes after the join: here, nothing.
        plain = await client.runs.create(tid, GRAPH_ID, input=say("plain"))
        await client.runs.join(tid, plain["run_id"])
        assert [p async for p in follower.runs.join_stream(tid, plain["run_id"])] == []

    with (
        serve_in_thread(make_settings(tmp_path / "a", run_workers=1, **shared)) as worker,
        serve_in_thread(make_settings(tmp_path / "b", run_workers=0, **shared)) as other,
    ):
        asyncio.run(scenario(worker, other))


@covers("threads.join_stream")
def test_thread_join_stream_follows_each_background_run_from_another_replica(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    shared = {
        "database_url": fresh_database(postgres_server),
        "redis_url": redis_server.url,
        "run_queue_poll_seconds": 0.1,
    }

    async def until_done(opening: Any, runs: int) -> list[Any]:
        # threads.join_stream is a coroutine that answers the stream.
        parts = []
        async for part in await opening:
            parts.append(part)
            if sum(p.event == "run_done" for p in parts) == runs:
                break
        return parts

    async def scenario(worker: Service, other: Service) -> None:
        client = worker.client()
        follower = other.client()
        tid = (await client.threads.create())["thread_id"]
        following = asyncio.create_task(until_done(follower.threads.join_stream(tid), 2))
        await asyncio.sleep(0.5)  # the follower is connected: it streams what comes next
        first = await client.runs.create(tid, GRAPH_ID, input=say("one"))
        second = await client.runs.create(
            tid, GRAPH_ID, input=say("two"), multitask_strategy="enqueue"
        )
        parts = await asyncio.wait_for(following, 60)
        starts = [p.data["run_id"] for p in parts if p.event == "metadata"]
        done = [p.data for p in parts if p.event == "run_done"]
        assert starts == [first["run_id"], second["run_id"]]
        assert done == [
            {"run_id": first["run_id"], "status": "success"},
            {"run_id": second["run_id"], "status": "success"},
        ]
        values = [p.data for p in parts if p.event == "values"]
        assert _texts(values[-1]) == ["one", "echo: one", "two", "echo: two"]
        # From the start of the log ("-"), lifecycle only: starts and ends, in order.
        lifecycle = await until_done(
            follower.threads.join_stream(tid, last_event_id="-", stream_mode="lifecycle"), 2
        )
        assert [p.event for p in lifecycle] == ["metadata", "run_done", "metadata", "run_done"]
        # Resuming after the first run's end replays the second run only.
        first_end = next(p.id for p in parts if p.event == "run_done")
        resumed = await until_done(follower.threads.join_stream(tid, last_event_id=first_end), 1)
        assert [p.data["run_id"] for p in resumed if p.event == "metadata"] == [second["run_id"]]
        with pytest.raises(NotFoundError):
            await until_done(other.client("bob").threads.join_stream(tid), 1)
        mode: Any = "everything"
        with pytest.raises(UnprocessableEntityError, match="stream_mode"):
            await until_done(follower.threads.join_stream(tid, stream_mode=mode), 1)

    with (
        serve_in_thread(make_settings(tmp_path / "a", run_workers=1, **shared)) as worker,
        serve_in_thread(make_settings(tmp_path / "b", run_workers=0, **shared)) as other,
    ):
        asyncio.run(scenario(worker, other))


@covers("runs.stream")
def test_stream_mode_events(service: Service) -> None:
    async def scenario() -> None:
        client = service.client()
        tid = (await client.threads.create())["thread_id"]
        parts = [
            part
            async for part in client.runs.stream(
                tid, GRAPH_ID, input=say("events"), stream_mode=["events", "values"]
            )
        ]
        events = [p.data for p in parts if p.event == "events"]
        kinds = {e["event"] for e in events}
        # LangChain's astream_events (v2): the graph, its nodes, and the chat model's tokens.
        assert {"on_chain_start", "on_chain_end", "on_chat_model_stream"} <= kinds
        assert {e["name"] for e in events if e["event"] == "on_chain_start"} >= {
            "remember",
            "respond",
        }
        values = [p.data for p in parts if p.event == "values"]
        assert _texts(values[-1]) == ["events", "echo: events"]
        # The graph's own chunks come as their modes, not twice as events.
        assert not [e for e in events if e["event"] == "on_chain_stream" and not e["parent_ids"]]

    asyncio.run(scenario())


def test_unknown_and_unsupported_fields_answer_422(service: Service) -> None:
    with service.http() as http:
        tid = http.post("/threads", json={}).json()["thread_id"]
        for extra, named in (
            ({"surprise": 1}, "surprise"),
            ({"webhook": "http://127.0.0.1:9/hook"}, "webhook"),
            ({"feedback_keys": ["x"]}, "feedback_keys"),
            ({"checkpoint_during": True}, "checkpoint_during"),
            ({"after_seconds": -1}, "after_seconds"),
        ):
            response = http.post(f"/threads/{tid}/runs", json={"assistant_id": GRAPH_ID, **extra})
            assert response.status_code == 422, (extra, response.text)
            assert named in response.json()["detail"]
        for inline_only in ({"after_seconds": 1}, {"stream_resumable": True}):
            waited = http.post(
                f"/threads/{tid}/runs/wait", json={"assistant_id": GRAPH_ID, **inline_only}
            )
            assert waited.status_code == 422
            assert next(iter(inline_only)) in waited.json()["detail"]


# ----- double texting: one test per strategy --------------------------------------------


@covers("runs.create")
def test_double_text_reject(service: Service) -> None:
    async def scenario() -> None:
        client = service.client()
        tid = (await client.threads.create())["thread_id"]
        first = await client.runs.create(tid, GRAPH_ID, input=say("first"), config=SLOW)
        with pytest.raises(ConflictError, match="already has a run in progress"):
            await client.runs.create(
                tid, GRAPH_ID, input=say("second"), multitask_strategy="reject"
            )
        with pytest.raises(httpx.HTTPStatusError) as inline:
            await client.runs.wait(tid, GRAPH_ID, input=say("second"))
        assert inline.value.response.status_code == 409
        assert _texts(await client.runs.join(tid, first["run_id"])) == ["first", "echo: first"]
        assert len(await client.runs.list(tid)) == 1

    asyncio.run(scenario())


@covers("runs.create")
def test_double_text_enqueue(service: Service) -> None:
    async def scenario() -> None:
        client = service.client()
        tid = (await client.threads.create())["thread_id"]
        first = await client.runs.create(tid, GRAPH_ID, input=say("first"), config=SLOW)
        second = await client.runs.create(
            tid, GRAPH_ID, input=say("second"), multitask_strategy="enqueue"
        )
        assert (await client.runs.get(tid, second["run_id"]))["status"] == "pending"
        joined = await client.runs.join(tid, second["run_id"])
        assert _texts(joined) == ["first", "echo: first", "second", "echo: second"]
        assert (await client.runs.get(tid, first["run_id"]))["status"] == "success"

    asyncio.run(scenario())


@covers("runs.create")
def test_double_text_interrupt(service: Service) -> None:
    async def scenario() -> None:
        client = service.client()
        tid = (await client.threads.create())["thread_id"]
        first = await client.runs.create(tid, GRAPH_ID, input=say("first"), config=SLOW)
        await _until_checkpointed(client, tid, "first")
        second = await client.runs.create(
            tid, GRAPH_ID, input=say("second"), multitask_strategy="interrupt"
        )
        joined = await client.runs.join(tid, second["run_id"])
        # The first run's progress (its input, checkpointed before it was halted) stays.
        assert _texts(joined) == ["first", "second", "echo: second"]
        assert (await client.runs.get(tid, first["run_id"]))["status"] == "interrupted"
        # Inline runs double-text the same way.
        await client.runs.create(tid, GRAPH_ID, input=say("third"), config=SLOW)
        await _until_checkpointed(client, tid, "third")
        waited = await client.runs.wait(
            tid, GRAPH_ID, input=say("fourth"), multitask_strategy="interrupt"
        )
        assert isinstance(waited, dict)
        assert _texts(waited)[-3:] == ["third", "fourth", "echo: fourth"]

    asyncio.run(scenario())


@covers("runs.create")
def test_double_text_rollback(service: Service) -> None:
    async def scenario() -> None:
        client = service.client()
        tid = (await client.threads.create())["thread_id"]
        first = await client.runs.create(tid, GRAPH_ID, input=say("first"), config=SLOW)
        await _until_checkpointed(client, tid, "first")
        second = await client.runs.create(
            tid, GRAPH_ID, input=say("second"), multitask_strategy="rollback"
        )
        joined = await client.runs.join(tid, second["run_id"])
        # The first run and everything it wrote are gone.
        assert _texts(joined) == ["second", "echo: second"]
        with pytest.raises(NotFoundError):
            await client.runs.get(tid, first["run_id"])
        assert [r["run_id"] for r in await client.runs.list(tid)] == [second["run_id"]]

    asyncio.run(scenario())


def test_double_text_is_unprocessable_with_an_unknown_strategy(service: Service) -> None:
    async def scenario() -> None:
        client = service.client()
        tid = (await client.threads.create())["thread_id"]
        strategy: Any = "shout"
        with pytest.raises(UnprocessableEntityError, match="multitask_strategy"):
            await client.runs.create(tid, GRAPH_ID, input=say("x"), multitask_strategy=strategy)

    asyncio.run(scenario())


@covers("runs.create")
def test_a_queued_run_does_not_start_after_its_graph_was_revoked(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    """PRINCIPAL_GRAPHS is checked when a run is admitted and again when a worker starts it: a
    run queued (or delayed) before a deploy took the graph from its principal must not run."""
    url = fresh_database(postgres_server)
    common: dict[str, Any] = {"database_url": url, "redis_url": redis_server.url}

    async def queue() -> tuple[str, str]:
        client = accepting.client("bob")
        tid = (await client.threads.create())["thread_id"]
        run = await client.runs.create(tid, GRAPH_ID, input=say("queued"))
        return tid, run["run_id"]

    # No workers here: the run stays pending until the next process.
    with serve_in_thread(make_settings(tmp_path, run_workers=0, **common)) as accepting:
        tid, run_id = asyncio.run(queue())
    revoked = make_settings(
        tmp_path, run_queue_poll_seconds=0.1, principal_graphs={"bob": []}, **common
    )
    with serve_in_thread(revoked):
        # bob may not read the run any more: the record tells what the worker did with it.
        status = None
        for _ in range(100):
            with psycopg.connect(url, autocommit=True) as conn:
                status = conn.execute(
                    "SELECT status FROM agent_runs WHERE run_id = %s", (run_id,)
                ).fetchone()
            if status is not None and status[0] not in ("pending", "running"):
                break
            time.sleep(0.1)
        with psycopg.connect(url, autocommit=True) as conn:
            written = conn.execute(
                "SELECT count(*) FROM checkpoints WHERE thread_id = %s", (tid,)
            ).fetchone()
    assert status == ("error",), status
    assert written == (0,)
