"""Every error answer is JSON naming the problem: 401, 404, 409, 413, 422, 429, 504."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app.server.conftest import make_settings
from tests.app.server.graphs import GRAPH_ID
from tests.app.server.service import KEYS, Service, serve_in_thread

pytestmark = pytest.mark.integration

SAY: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def strict_service(tmp_path: Path) -> Iterator[Service]:
    settings = make_settings(
        tmp_path, rate_limit_per_minute=5, max_body_bytes=4096, request_timeout_seconds=1
    )
    with serve_in_thread(settings) as service:
        yield service


def test_401_without_or_with_a_wrong_key(sqlite_service: Service) -> None:
    with sqlite_service.http(principal=None) as http:
        missing = http.post("/threads", json={})
        wrong = http.post("/threads", json={}, headers={"X-API-Key": "not-a-key-at-all-000"})
        open_health = http.get("/health")
        open_ready = http.get("/ready")
    assert missing.status_code == 401
    assert missing.json() == {"error": "unauthorized", "detail": "missing X-API-Key header"}
    assert wrong.status_code == 401
    assert wrong.json()["detail"] == "invalid X-API-Key header"
    assert open_health.status_code == 200
    assert open_ready.status_code == 200


def test_404_409_and_422_name_the_problem(sqlite_service: Service) -> None:
    with sqlite_service.http() as http:
        unknown_thread = http.get("/threads/does-not-exist")
        unknown_assistant = http.post("/runs/wait", json={"assistant_id": "nope", "input": SAY})
        missing_field = http.post("/runs/wait", json={"input": SAY})
        bad_strategy = http.post(
            "/runs/wait",
            json={"assistant_id": GRAPH_ID, "input": SAY, "multitask_strategy": "shout"},
        )
        both = http.post(
            "/runs/wait",
            json={"assistant_id": GRAPH_ID, "input": SAY, "command": {"resume": 1}},
        )
        bad_limit = http.post("/threads/search", json={"limit": 0})
        not_json = http.post(
            "/threads", content=b"{not json", headers={"content-type": "application/json"}
        )
        thread = http.post("/threads", json={}).json()
        duplicate = http.post("/threads", json={"thread_id": thread["thread_id"]})
    assert unknown_thread.status_code == 404
    assert unknown_thread.json()["detail"] == "thread 'does-not-exist' not found"
    assert unknown_assistant.status_code == 404
    assert unknown_assistant.json()["detail"] == "assistant 'nope' not found"
    assert missing_field.status_code == 422
    assert missing_field.json()["errors"][0]["field"] == "assistant_id"
    assert "assistant_id: Field required" in missing_field.json()["detail"]
    assert bad_strategy.status_code == 422
    assert bad_strategy.json()["errors"][0]["field"] == "multitask_strategy"
    assert both.status_code == 422
    assert "either input or command" in both.json()["detail"]
    assert bad_limit.status_code == 422
    assert bad_limit.json()["errors"][0]["field"] == "limit"
    assert not_json.status_code == 422
    assert duplicate.status_code == 409
    assert duplicate.json()["error"] == "thread_exists"


def test_413_for_a_large_body(strict_service: Service) -> None:
    big = {
        "assistant_id": GRAPH_ID,
        "input": {"messages": [{"role": "user", "content": "x" * 10_000}]},
    }
    with strict_service.http() as http:
        declared = http.post("/runs/wait", json=big)

        def chunks() -> Iterator[bytes]:
            yield b'{"assistant_id": "echo_agent", "input": {"text": "'
            for _ in range(10):
                yield b"y" * 1000
            yield b'"}}'

        streamed = http.post(
            "/runs/wait", content=chunks(), headers={"content-type": "application/json"}
        )
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"
        assert "4096 bytes" in response.json()["detail"]


def test_429_with_retry_after(strict_service: Service) -> None:
    with strict_service.http("bob") as http:
        statuses = [http.get("/ok").status_code for _ in range(5)]
        limited = http.get("/ok")
    assert statuses == [200] * 5
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "rate limit of 5 requests per minute" in limited.json()["detail"]
    # Per principal: alice is not limited by bob's requests.
    with strict_service.http("alice") as http:
        assert http.get("/ok").status_code == 200


def test_504_and_the_run_stays_resumable(strict_service: Service) -> None:
    async def scenario() -> None:
        client = strict_service.client()
        thread = await client.threads.create()
        tid = thread["thread_id"]
        with pytest.raises(httpx.HTTPStatusError) as timed_out:
            await client.runs.wait(tid, GRAPH_ID, input=SAY, config={"configurable": {"delay": 3}})
        response = timed_out.value.response
        assert response.status_code == 504
        body = response.json()
        assert body["error"] == "timeout"
        assert body["resumable"] is True
        assert body["thread_id"] == tid
        assert "request timeout of 1 s" in body["detail"]
        state = await client.threads.get_state(tid)
        # `remember` was checkpointed; `respond` is what is left to run.
        assert state["next"] == ["respond"]
        resumed = await client.runs.wait(tid, GRAPH_ID, input=None)
        assert isinstance(resumed, dict)
        assert [m["content"] for m in resumed["messages"]] == ["hi", "echo: hi"]
        assert resumed["respond_calls"] == 1

    asyncio.run(scenario())


def test_stream_timeout_ends_with_an_error_event(strict_service: Service) -> None:
    async def scenario() -> None:
        client = strict_service.client()
        thread = await client.threads.create()
        parts = [
            part
            async for part in client.runs.stream(
                thread["thread_id"],
                GRAPH_ID,
                input=SAY,
                stream_mode="updates",
                config={"configurable": {"delay": 3}},
            )
        ]
        assert parts[0].event == "metadata"
        assert [p.event for p in parts[1:-1]] == ["updates"]
        assert parts[-1].event == "error"
        assert parts[-1].data["error"] == "timeout"
        assert "run it again with no input to resume" in parts[-1].data["message"]
        assert (await client.threads.get(thread["thread_id"]))["status"] == "idle"

    asyncio.run(scenario())


def test_run_domain_errors_answer_through_the_one_table(tmp_path: Path) -> None:
    """The run engine raises domain errors; each reaches the client as its table row says."""
    settings = make_settings(tmp_path, request_timeout_seconds=1)
    with serve_in_thread(settings) as service:

        async def scenario() -> list[httpx.Response]:
            headers = {"X-API-Key": KEYS["alice"]}
            async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=30) as http:
                answers = [
                    await http.post(
                        "/runs/wait",
                        json={"assistant_id": GRAPH_ID, "input": SAY, "config": config},
                    )
                    for config in (
                        {"recursion_limit": 0},
                        {"tags": "not-a-list"},
                        {"configurable": ["not", "an", "object"]},
                    )
                ]
                thread = (await http.post("/threads", json={})).json()["thread_id"]
                slow = asyncio.create_task(
                    http.post(
                        f"/threads/{thread}/runs/wait",
                        json={
                            "assistant_id": GRAPH_ID,
                            "input": SAY,
                            "config": {"configurable": {"delay": 3}},
                        },
                    )
                )
                await asyncio.sleep(0.3)
                for strategy in ("reject", "enqueue"):
                    answers.append(
                        await http.post(
                            f"/threads/{thread}/runs/wait",
                            json={
                                "assistant_id": GRAPH_ID,
                                "input": SAY,
                                "multitask_strategy": strategy,
                            },
                        )
                    )
                await slow
                return answers

        limit, tags, configurable, busy, enqueued = asyncio.run(scenario())
    assert (limit.status_code, limit.json()["error"]) == (422, "validation_error")
    assert "config.recursion_limit must be an integer from 1 to 1000" in limit.json()["detail"]
    assert (tags.status_code, tags.json()["detail"]) == (
        422,
        "config.tags must be a list of strings",
    )
    assert configurable.status_code == 422
    assert configurable.json()["detail"] == "config.configurable must be an object"
    assert (busy.status_code, busy.json()["error"]) == (409, "thread_busy")
    assert "already has a run in progress" in busy.json()["detail"]
    # "enqueue" waits for the slow run (ended by the 1 s request timeout), then runs.
    assert enqueued.status_code == 200
