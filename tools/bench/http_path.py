"""What each layer of the service's HTTP path costs: every middleware of `create_app`, alone in
front of an endpoint that answers at once, called in-process (no socket) with a runs/wait
request's scope; the cost of a layer is its time per request less the bare endpoint's. And
the reply's JSON: a 40-message main_agent state through the standard encoder and through
`json_bytes`. Microseconds of one CPU, medians of repetitions."""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from agent_service.auth.api_keys import ApiKeyAuthenticator
from agent_service.core.circuit import Circuit
from agent_service.core.ratelimit import RateLimiter
from agent_service.core.serialization import json_bytes, to_jsonable
from agent_service.server.logging_setup import configure_logging
from agent_service.server.middleware import (
    AuthMiddleware,
    BodyLimitMiddleware,
    DatabaseGuardMiddleware,
    RequestLogMiddleware,
    UrlLimitMiddleware,
)
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import SecretStr
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KEY = "bench-key-0123456789abcdef"
BODY = json.dumps(
    {"assistant_id": "main_agent", "input": {"messages": [{"role": "user", "content": "hi"}]}}
).encode()


async def _endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"{}"})


def _scope(app: Any) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/threads/6f1c9f2e-0000-4000-8000-000000000000/runs/wait",
        "raw_path": b"/threads/6f1c9f2e-0000-4000-8000-000000000000/runs/wait",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
            (b"x-api-key", KEY.encode()),
            (b"origin", b"https://app.example.com"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "app": app,
        "state": {},
    }


def _layers(services: Any) -> dict[str, Callable[[ASGIApp], ASGIApp]]:
    return {
        "request log (id, log line, metrics, span)": lambda inner: RequestLogMiddleware(inner),
        "URL limit + path check": lambda inner: UrlLimitMiddleware(inner, max_url_chars=4096),
        "CORS": lambda inner: CORSMiddleware(
            inner,
            allow_origins=["https://app.example.com"],
            allow_methods=["POST"],
            allow_headers=["content-type", "x-api-key"],
        ),
        "body limit": lambda inner: BodyLimitMiddleware(inner, max_body_bytes=1_000_000),
        "auth + rate limit (in-process)": lambda inner: AuthMiddleware(
            inner, open_paths=frozenset({"/health"})
        ),
        "database guard": lambda inner: DatabaseGuardMiddleware(
            inner, guarded_prefixes=("/threads", "/runs")
        ),
    }


async def _per_request_us(app: ASGIApp, holder: Any, count: int) -> float:
    async def receive() -> Message:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: Message) -> None:
        return None

    started = time.perf_counter()
    for _ in range(count):
        await app(_scope(holder), receive, send)
    return (time.perf_counter() - started) / count * 1e6


def _services() -> Any:
    return SimpleNamespace(
        auth=ApiKeyAuthenticator({"bench": SecretStr(KEY)}),
        limiter=RateLimiter(100_000_000, None),
        auth_failures=RateLimiter(100, None),
        database_circuit=Circuit(5.0),
    )


def _state(messages: int) -> dict[str, Any]:
    history: list[Any] = []
    for turn in range(messages // 2):
        history.append(HumanMessage(content=f"run {turn} from worker 3", id=f"h{turn}"))
        history.append(
            AIMessage(
                content=f"Happy to help with your order, turn {turn}.",
                id=f"a{turn}",
                usage_metadata={"input_tokens": 12, "output_tokens": 9, "total_tokens": 21},
                response_metadata={"model_name": "offline"},
            )
        )
    return {"messages": history, "model_calls": 20, "input_tokens": 240, "cost_usd": 0.0}


def _json_us(encode: Callable[[Any], bytes], value: Any, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        encode(value)
    return (time.perf_counter() - started) / count * 1e6


def _standard(value: Any) -> bytes:
    return json.dumps(
        to_jsonable(value), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode()


def measure(count: int = 3000, repetitions: int = 3) -> dict[str, Any]:
    """Per layer: microseconds per request over the bare endpoint, at LOG_LEVEL INFO (one JSON
    line per request, as production logs) and WARNING (the bench's servers)."""
    holder = SimpleNamespace(state=SimpleNamespace(services=_services()))
    layers: list[dict[str, Any]] = []
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        for level in ("INFO", "WARNING"):
            configure_logging(level)
            # The log line is rendered and written; where it goes is not what is measured.
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setStream(open("/dev/null", "w"))  # noqa: SIM115
            bare = statistics.median(
                asyncio.run(_per_request_us(_endpoint, holder, count)) for _ in range(repetitions)
            )
            for name, wrap in _layers(holder.state.services).items():
                if level == "WARNING" and not name.startswith("request log"):
                    continue
                app = wrap(_endpoint)
                cost = statistics.median(
                    asyncio.run(_per_request_us(app, holder, count)) for _ in range(repetitions)
                )
                layers.append({"layer": name, "log_level": level, "us": max(0.0, cost - bare)})
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    state = _state(40)
    reply = {
        "messages": 40,
        "bytes": len(json_bytes(state)),
        "standard_us": statistics.median(
            _json_us(_standard, state, count // 10) for _ in range(repetitions)
        ),
        "json_bytes_us": statistics.median(
            _json_us(json_bytes, state, count // 10) for _ in range(repetitions)
        ),
    }
    return {"layers": layers, "reply_json": reply}
