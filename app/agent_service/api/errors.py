"""Every error answer is JSON with a `detail` sentence naming the problem (langgraph-sdk reads
`detail` into its exception message) plus a machine-readable `error` code."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from agent_service.runs.errors import (
    AssistantNotFound,
    GraphMismatch,
    InvalidRunConfig,
    RunError,
    ThreadBusy,
    ThreadIdUnavailable,
    ThreadNotFound,
    ThreadStayedBusy,
)


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
    ThreadStayedBusy: (504, "timeout"),
}


def run_error(exc: RunError) -> ApiError:
    status, code = RUN_ERRORS[type(exc)]
    return ApiError(status, code, str(exc))
