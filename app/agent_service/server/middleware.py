"""Pure ASGI middleware (no BaseHTTPMiddleware: it buffers and breaks streaming and
contextvars). Outermost first: request log, body limit, authentication + rate limit."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_service.auth.api_keys import API_KEY_HEADER
from agent_service.core.json_limits import text_problem
from agent_service.core.request_context import annotate, current, start_request
from agent_service.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

log = structlog.get_logger("agent_service.request")
tracer = trace.get_tracer("agent_service.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SAFE_HEADERS = ((b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"))
# The request log keeps this much of a path: enough for any route, cheap to redact.
LOGGED_PATH_CHARS = 256
# Probes and scrapes answer often and say little: logged at debug level only.
_QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})


UNMATCHED_ROUTE = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


RoutePatterns = tuple[tuple[re.Pattern[str], str], ...]


def route_template(scope: Scope, patterns: RoutePatterns) -> str:
    """The matched route's path template, a bounded label value. FastAPI puts the route in the
    scope when it routes; requests answered before routing (401, 413, 429) are matched here
    against the app's route patterns."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    requested = scope.get("path", "")
    for regex, template in patterns:
        if regex.match(requested):
            return template
    return UNMATCHED_ROUTE


def method_label(scope: Scope) -> str:
    """The request method, or OTHER for anything outside HTTP's standard set (the server
    accepts any token as a method; each would be a new series)."""
    method = str(scope.get("method", ""))
    return method if method in _METHODS else "OTHER"


class RequestLogMiddleware:
    """Request id (X-Request-ID in and out), contextvars for every log line of the request,
    and one JSON line per request with method, path, status, principal, thread, graph and
    latency."""

    def __init__(self, app: ASGIApp, routes: RoutePatterns = ()) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        start_request()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.append((b"x-request-id", request_id.encode()))
                # Answers carry users' data: no cache keeps them, no browser guesses a type.
                headers += [h for h in _SAFE_HEADERS if h[0] not in present]
                message["headers"] = headers
            await send(message)

        span = tracer.start_span(f"HTTP {scope.get('method', '')}")
        # The run's span (started in the run's task, which copies this context) is its child.
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            otel_context.detach(token)
            elapsed = time.perf_counter() - started
            method = method_label(scope)
            route = route_template(scope, self.routes)
            span.update_name(f"{method} {route}")
            span.set_attributes(
                {
                    "http.request.method": method,
                    "http.route": route,
                    "http.response.status_code": status,
                }
            )
            if status >= 500:
                span.set_status(trace.StatusCode.ERROR)
            span.end()
            HTTP_REQUESTS.labels(method=method, route=route, code=str(status)).inc()
            HTTP_REQUEST_DURATION.labels(method=method, route=route).observe(elapsed)
            path = scope.get("path", "")
            fields: dict[str, Any] = {
                "method": scope.get("method"),
                "path": path[:LOGGED_PATH_CHARS],
                "status": status,
                "latency_ms": round(elapsed * 1000, 1),
                **current(),
            }
            if path in _QUIET_PATHS:
                log.debug("request", **fields)
            else:
                log.info("request", **fields)
            structlog.contextvars.clear_contextvars()


async def _send_json(send: Send, response_body: Any, status: int, headers: dict[str, str]) -> None:
    payload = json.dumps(response_body).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


class UrlLimitMiddleware:
    """414 for a request target (path and query) longer than MAX_URL_CHARS, before
    authentication or routing look at it: a long URL costs nothing."""

    def __init__(self, app: ASGIApp, max_url_chars: int) -> None:
        self.app = app
        self.max_url_chars = max_url_chars

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = len(scope.get("raw_path") or scope.get("path", "")) + len(
                scope.get("query_string", b"")
            )
            if length > self.max_url_chars:
                detail = f"request URL exceeds the limit of {self.max_url_chars} characters"
                await _send_json(
                    send, {"error": "uri_too_long", "detail": f"{detail} (MAX_URL_CHARS)"}, 414, {}
                )
                return
            if Headers(scope=scope).get("idempotency-key") is not None:
                # Not implemented: a retried POST would run twice. Saying so beats ignoring it.
                await _send_json(
                    send,
                    {
                        "error": "validation_error",
                        "detail": "invalid request: the Idempotency-Key header is not "
                        "supported by this server; a retried request runs again",
                    },
                    422,
                    {},
                )
                return
            # Path parameters (thread, run, user ids) reach SQL: refuse what no column holds.
            problem = text_problem(scope.get("path", ""))
            if problem is not None:
                await _send_json(
                    send,
                    {"error": "validation_error", "detail": f"invalid request: path: {problem}"},
                    422,
                    {},
                )
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 for bodies over MAX_BODY_BYTES: at once when Content-Length says so, otherwise
    as soon as the streamed body passes the limit."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    def _detail(self) -> str:
        return f"request body exceeds the limit of {self.max_body_bytes} bytes (MAX_BODY_BYTES)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await _send_json(
                send, {"error": "payload_too_large", "detail": self._detail()}, 413, {}
            )
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # FastAPI re-raises HTTPException from body parsing; the app's handler
                    # turns it into the JSON 413.
                    raise HTTPException(413, self._detail())
            return message

        await self.app(scope, limited_receive, send)


class DatabaseGuardMiddleware:
    """While the database circuit is open (a request just found the database unavailable),
    requests that need the database answer 503 at once; one passes every cool-down period
    to find out whether it is back."""

    def __init__(self, app: ASGIApp, guarded_prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.guarded_prefixes = guarded_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith(self.guarded_prefixes):
            circuit = scope["app"].state.services.database_circuit
            if not circuit.closed:
                await _send_json(
                    send,
                    {
                        "error": "database_unavailable",
                        "detail": "the database is unavailable; retry shortly",
                    },
                    503,
                    {"retry-after": "5"},
                )
                return
        await self.app(scope, receive, send)


class AuthMiddleware:
    """X-API-Key -> principal, then the principal's rate limit. /health and /ready are open;
    /metrics too unless METRICS_REQUIRE_AUTH."""

    def __init__(self, app: ASGIApp, open_paths: frozenset[str]) -> None:
        self.app = app
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.open_paths:
            await self.app(scope, receive, send)
            return
        services = scope["app"].state.services
        presented = Headers(scope=scope).get(API_KEY_HEADER)
        principal = services.auth.authenticate(presented)
        if principal is None:
            client = (scope.get("client") or ("unknown", 0))[0]
            wait = await services.auth_failures.hit(f"auth-failure:{client}")
            if wait is not None:
                await _send_json(
                    send,
                    {
                        "error": "rate_limited",
                        "detail": "too many failed authentications from this address; "
                        f"retry in {wait} s",
                    },
                    429,
                    {"retry-after": str(wait)},
                )
                return
            detail = "missing X-API-Key header" if not presented else "invalid X-API-Key header"
            await _send_json(
                send,
                {"error": "unauthorized", "detail": detail},
                401,
                {"www-authenticate": 'ApiKey header="X-API-Key"'},
            )
            return
        annotate(principal=principal)
        structlog.contextvars.bind_contextvars(principal=principal)
        retry_after = await services.limiter.hit(principal)
        if retry_after is not None:
            await _send_json(
                send,
                {
                    "error": "rate_limited",
                    "detail": f"rate limit of {services.limiter.limit} requests per minute "
                    f"exceeded for principal {principal!r}; retry in {retry_after} s",
                },
                429,
                {"retry-after": str(retry_after)},
            )
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
