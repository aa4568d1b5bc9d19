"""Every error answer is JSON with a `detail` sentence naming the problem (langgraph-sdk reads
`detail` into its exception message) plus a machine-readable `error` code."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


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
