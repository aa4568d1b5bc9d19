"""Hostile and careless input: long URLs, pathological text for the regexes, bad values.
Each answer is a 4xx naming the problem, at once; none is a 500 and none stalls the worker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from agent_service.auth.api_keys import ApiKeyAuthenticator
from agent_service.settings import Settings
from langgraph_sdk.schema import Config
from pydantic import SecretStr

from tests.app.server.conftest import make_settings
from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.service import Service, serve_in_thread
from tools.kit.programs import REPO_ROOT

pytestmark = pytest.mark.integration

# Not a speed assertion: the quadratic patterns took hours on these inputs (16 KB: 1.6-3 s,
# growing with the square); linear ones take well under a second. The bound only tells a
# hang from an answer.
HANG_SECONDS = 60


def _finishes(code: str) -> None:
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        check=True,
        timeout=HANG_SECONDS,
    )


def test_a_long_url_is_refused_before_it_reaches_auth_or_the_log(
    sqlite_service: Service,
) -> None:
    with sqlite_service.http(principal=None) as http:
        response = http.get("/x/" + "a." * 16_000)
        assert response.status_code == 414
        assert "MAX_URL_CHARS" in response.json()["detail"]
        assert http.get("/threads/" + "a" * 200).status_code == 401


def test_pii_redaction_is_linear_in_the_text() -> None:
    _finishes(
        """
        from agent_service.guardrails.redaction import redact
        for text in ("a." * 500_000, "a@a." * 250_000, "1 " * 500_000):
            redact(text)
        assert redact("x jane.doe@example.co.uk.") == "x [REDACTED_EMAIL]."
        """
    )


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


def test_deep_metadata_is_refused_and_never_stored(pg_service: Service) -> None:
    with pg_service.http() as http:
        deep = http.post("/threads", json={"metadata": _nested(900)})
        assert deep.status_code == 422
        assert "metadata" in deep.json()["detail"]
        assert "nested deeper than" in deep.json()["detail"]
        raw = b'{"metadata": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001
        very_deep = http.post("/threads", content=raw, headers={"content-type": "application/json"})
        assert very_deep.status_code in (400, 422), very_deep.text
        assert http.post("/threads", json={"metadata": _nested(20)}).status_code == 200
        assert http.post("/threads/search", json={}).status_code == 200
        assert http.get("/users/alice/export").status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/threads/search", {"offset": 2**63}, "offset"),
        ("/assistants/search", {"offset": 2**63}, "offset"),
        ("/threads", {"thread_id": "a\x00b"}, "body"),
        ("/threads", {"metadata": {"k\x00": 1}}, "metadata"),
        ("/threads", {"metadata": {"k": "v\x00"}}, "metadata.k"),
        ("/runs/wait", {"assistant_id": "echo_agent", "input": {"x": "\x00"}}, "input.x"),
    ],
)
def test_nul_bytes_and_huge_offsets_answer_422_naming_the_field(
    pg_service: Service, path: str, body: dict[str, Any], field: str
) -> None:
    with pg_service.http() as http:
        response = http.post(path, json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


def test_a_nul_byte_in_a_path_or_a_lone_surrogate_answers_422(pg_service: Service) -> None:
    with pg_service.http() as http:
        for path in ("/threads/a%00b", "/threads/a%00b/state", "/users/a%00b/export"):
            response = http.get(path)
            assert response.status_code == 422, (path, response.text)
            assert "NUL" in response.json()["detail"]
        surrogate = http.post(
            "/threads",
            content=b'{"metadata": {"k": "\\ud800"}}',
            headers={"content-type": "application/json"},
        )
        assert surrogate.status_code == 422, surrogate.text
        assert "surrogate" in surrogate.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": {"messages": [{"role": "bogus", "content": "hi"}]}}, "input.messages"),
        ({"input": {"messages": 5}}, "input.messages"),
        ({"input": [1, 2]}, "input"),
        ({"input": {}, "interrupt_before": ["no_such_node"]}, "interrupt_before"),
        ({"input": {}, "interrupt_after": ["no_such_node"]}, "interrupt_after"),
        ({"command": {"goto": "no_such_node"}}, "command.goto"),
        ({"command": {"update": {"no_such_channel": 1}}}, "command.update"),
        ({"input": {}, "stream_resumable": True}, "stream_resumable"),
        ({"input": {}, "feedback_keys": ["x"]}, "feedback_keys"),
    ],
)
def test_run_input_the_graph_cannot_take_answers_422(
    sqlite_service: Service, body: dict[str, Any], field: str
) -> None:
    with sqlite_service.http() as http:
        response = http.post("/runs/wait", json={"assistant_id": GRAPH_ID, **body})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(("invalid request: ", field)), response.text
    assert field in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"ttl": 5},  # the API takes {"ttl": minutes, "strategy": ...}, as langgraph-sdk sends
        {"ttl": {"ttl": 5, "strategy": "keep_latest"}},
        {"ttl": {"ttl": 0}},
        {"supersteps": [{"updates": []}]},
    ],
)
def test_thread_options_this_server_lacks_answer_422(
    sqlite_service: Service, body: dict[str, Any]
) -> None:
    with sqlite_service.http() as http:
        response = http.post("/threads", json=body)
    assert response.status_code == 422, response.text
    assert next(iter(body)) in response.json()["detail"]


def test_a_failing_run_is_an_error_result_the_sdk_understands(sqlite_service: Service) -> None:
    async def scenario() -> None:
        client = sqlite_service.client()
        thread = await client.threads.create()
        config: Config = {"recursion_limit": 1}
        result = await client.runs.wait(
            thread["thread_id"], GRAPH_ID, input=say("hi"), config=config, raise_error=False
        )
        assert isinstance(result, dict)
        assert result["__error__"]["error"] == "GraphRecursionError"
        with pytest.raises(Exception, match="GraphRecursionError"):
            await client.runs.wait(thread["thread_id"], GRAPH_ID, input=say("hi"), config=config)
        assert (await client.threads.get(thread["thread_id"]))["status"] == "error"

    asyncio.run(scenario())


def test_a_stateless_runs_content_location_answers(sqlite_service: Service) -> None:
    with sqlite_service.http() as http:
        response = http.post(
            "/runs/wait",
            json={"assistant_id": GRAPH_ID, "input": say("hi"), "on_completion": "keep"},
        )
        assert response.status_code == 200
        run = http.get(response.headers["content-location"])
        assert run.status_code == 200, response.headers["content-location"]
        assert run.json()["status"] == "success"


def test_if_not_exists_create_takes_no_longer_thread_id_than_create(
    sqlite_service: Service,
) -> None:
    long_id = "t" * 3000
    with sqlite_service.http() as http:
        created = http.post("/threads", json={"thread_id": long_id})
        run = http.post(
            f"/threads/{long_id}/runs/wait",
            json={"assistant_id": GRAPH_ID, "input": say("hi"), "if_not_exists": "create"},
        )
        assert created.status_code == run.status_code == 422, run.text
        assert "thread_id" in run.json()["detail"]
        assert http.post("/threads/search", json={"ids": [long_id]}).json() == []


def test_another_principals_thread_id_is_unavailable_not_revealed(
    sqlite_service: Service,
) -> None:
    with sqlite_service.http("alice") as alice, sqlite_service.http("bob") as bob:
        alice.post("/threads", json={"thread_id": "taken-by-alice"}).raise_for_status()
        create = bob.post("/threads", json={"thread_id": "taken-by-alice"})
        run = bob.post(
            "/threads/taken-by-alice/runs/wait",
            json={"assistant_id": GRAPH_ID, "input": say("hi"), "if_not_exists": "create"},
        )
        read = bob.get("/threads/taken-by-alice")
    for response in (create, run):
        assert response.status_code == 409
        assert response.json()["error"] == "thread_id_unavailable"
        assert "exist" not in response.json()["detail"]
    assert read.status_code == 404


def test_json_answers_are_never_cached_or_sniffed(sqlite_service: Service) -> None:
    with sqlite_service.http() as http:
        for response in (
            http.post("/threads", json={}),
            http.get("/threads/nope"),
            http.get("/users/alice/export"),
        ):
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["x-content-type-options"] == "nosniff"


def test_failed_authentication_is_rate_limited(tmp_path: Path) -> None:
    with (
        serve_in_thread(make_settings(tmp_path, auth_failures_per_minute=3)) as service,
        service.http(principal=None) as http,
    ):
        wrong = {"X-API-Key": "wrong-key-0123456789abcdef"}
        statuses = [http.post("/threads", json={}, headers=wrong).status_code for _ in range(5)]
        assert statuses == [401, 401, 401, 429, 429]
        limited = http.post("/threads", json={}, headers=wrong)
        assert int(limited.headers["retry-after"]) >= 1
        assert "failed authentications" in limited.json()["detail"]
        assert http.get("/health").status_code == 200


def test_a_key_with_surrounding_whitespace_authenticates_at_either_end() -> None:
    key = "alice-key-0123456789abcdef"
    auth = ApiKeyAuthenticator({"alice": SecretStr(key)})
    for presented in (key, f" {key}", f"{key} ", f"\t{key}\t"):
        assert auth.authenticate(presented) == "alice", repr(presented)
    settings = Settings(api_keys={"alice": SecretStr(f" {key}\n")})
    assert ApiKeyAuthenticator(settings.api_keys).authenticate(f"{key} ") == "alice"


def test_an_idempotency_key_is_refused_rather_than_ignored(sqlite_service: Service) -> None:
    with sqlite_service.http() as http:
        response = http.post("/threads", json={}, headers={"Idempotency-Key": "k-1"})
        assert response.status_code == 422
        assert "Idempotency-Key" in response.json()["detail"]
        assert http.post("/threads/search", json={}).json() == []


@pytest.mark.parametrize(
    "body",
    [
        {"checkpoint": {"checkpoint_ns": 7, "checkpoint_id": []}},
        {"before": {"checkpoint_id": 5}},
    ],
)
def test_history_takes_checkpoint_references_of_the_right_types(
    sqlite_service: Service, body: dict[str, Any]
) -> None:
    with sqlite_service.http() as http:
        thread_id = http.post("/threads", json={"metadata": {"graph_id": GRAPH_ID}}).json()[
            "thread_id"
        ]
        http.post(
            f"/threads/{thread_id}/runs/wait", json={"assistant_id": GRAPH_ID, "input": say("x")}
        ).raise_for_status()
        response = http.post(f"/threads/{thread_id}/history", json=body)
        assert response.status_code == 422, response.text
        assert next(iter(body)) in response.json()["detail"]


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity"])
def test_a_number_json_cannot_carry_back_answers_422(pg_service: Service, number: bytes) -> None:
    with pg_service.http() as http:
        response = http.post(
            "/threads",
            content=b'{"metadata": {"score": ' + number + b"}}",
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422, response.text
        assert "metadata.score: not a finite number" in response.json()["detail"]


def test_a_command_sends_to_a_bounded_number_of_nodes(sqlite_service: Service) -> None:
    # 400 `Send`s in one command.goto held the event loop for minutes (research_agent: 200
    # took 24 s, superlinear), past the request timeout, and /health stopped answering.
    sends = [{"node": "respond", "input": {}} for _ in range(100)]
    with sqlite_service.http() as http:
        response = http.post(
            "/runs/wait", json={"assistant_id": GRAPH_ID, "command": {"goto": sends}}
        )
    assert response.status_code == 422, response.text
    assert "command.goto" in response.text
