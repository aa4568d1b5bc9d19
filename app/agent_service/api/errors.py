"""Every error answer is JSON with a `detail` sentence naming the problem (langgraph-sdk reads
`detail` into its exception message) plus a machine-readable `error` code."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from agent_service.runs.errors import (
    ApprovalPending,
    AssistantNotFound,
    GraphMismatch,
    InvalidRunConfig,
    RunError,
    ThreadBusy,
    ThreadIdUnavailable,
    ThreadNotFound,
    ThreadStayedBusy,
    TooManyRuns,
)


class ErrorBody(BaseModel):
    """Every error answer's shape, as the OpenAPI schema declares it (fields such as `errors`,
    `run_id` or `resumable` come on top)."""

    model_config = ConfigDict(extra="allow")
    error: str
    detail: str


# The error answers any API route may give; declared so the schema (and the fuzzing that
# checks answers against it) knows them. 422 replaces FastAPI's default validation shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "the body is not valid JSON",
        401: "missing or invalid X-API-Key",
        403: "the principal lacks a role or the graph",
        404: "not found (or another principal's)",
        409: "conflict (thread busy, id unavailable, graph mismatch)",
        413: "body over MAX_BODY_BYTES",
        414: "URL over MAX_URL_CHARS",
        422: "invalid request, naming the field",
        429: "rate limited",
        503: "database unavailable or run cancelled",
        504: "run exceeded REQUEST_TIMEOUT_SECONDS",
    }.items()
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}

    def response(self) -> JSONResponse:
        return error_response(
            self.status, self.code, self.detail, headers=self.headers, **self.extra
        )


def error_response(
    status: int,
    code: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        {"error": code, "detail": detail, **extra}, status_code=status, headers=headers
    )


def not_found(kind: str, identifier: str) -> ApiError:
    # The same answer whether the thing does not exist or belongs to another principal.
    return ApiError(404, "not_found", f"{kind} {identifier!r} not found")


# The run domain's errors as HTTP answers: one row per error type.
RUN_ERRORS: dict[type[RunError], tuple[int, str]] = {
    AssistantNotFound: (404, "not_found"),
    ThreadNotFound: (404, "not_found"),
    ThreadIdUnavailable: (409, "thread_id_unavailable"),
    InvalidRunConfig: (422, "validation_error"),
    GraphMismatch: (409, "graph_mismatch"),
    ThreadBusy: (409, "thread_busy"),
    ApprovalPending: (409, "approval_pending"),
    ThreadStayedBusy: (504, "timeout"),
    TooManyRuns: (429, "too_many_runs"),
}


def run_error(exc: RunError) -> ApiError:
    status, code = RUN_ERRORS[type(exc)]
    return ApiError(status, code, str(exc))
