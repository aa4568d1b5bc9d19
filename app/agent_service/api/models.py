"""Request bodies of the LangGraph Server API subset other than a run's (`runs.models`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from agent_service.core.request_body import Body
from agent_service.runs.models import MAX_THREAD_ID

ThreadStatusName = Literal["idle", "busy", "interrupted", "error"]
MAX_LIMIT = 1000
# Past any real table; PostgreSQL's OFFSET is a bigint, which 2**63 overflows (a 500).
MAX_OFFSET = 2**31 - 1


class ThreadCreate(Body):
    thread_id: str | None = Field(default=None, min_length=1, max_length=MAX_THREAD_ID)
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    # Threads live until deleted (or CHECKPOINT_CLEANUP_DAYS idle); no initial supersteps.
    _unsupported = ("ttl", "supersteps")


class ThreadSearch(Body):
    metadata: dict[str, Any] = Field(default_factory=dict)
    ids: list[str] | None = None
    status: ThreadStatusName | None = None
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT, strict=True)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET, strict=True)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    # Filtering on state values would load every thread's state: not offered.
    _unsupported = ("values", "extract")


class CheckpointRef(Body):
    """A checkpoint of the thread, as langgraph-sdk sends it (other keys are ignored)."""

    checkpoint_id: str | None = None
    checkpoint_ns: str = ""


class HistoryRequest(Body):
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT, strict=True)
    before: str | CheckpointRef | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointRef | None = None


class AssistantSearch(Body):
    metadata: dict[str, Any] = Field(default_factory=dict)
    graph_id: str | None = None
    name: str | None = None
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT, strict=True)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET, strict=True)


class InvokeRequest(Body):
    input: dict[str, Any]
    thread_id: str | None = Field(default=None, min_length=1, max_length=MAX_THREAD_ID)
    assistant_id: str = Field(default="main_agent", min_length=1, max_length=200)
    config: dict[str, Any] | None = None
