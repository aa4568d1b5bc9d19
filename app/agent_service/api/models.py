"""Request bodies of the LangGraph Server API subset other than a run's (`runs.models`)."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from agent_service.core.request_body import Body
from agent_service.runs.engine import MAX_RECURSION_LIMIT
from agent_service.runs.models import MAX_THREAD_ID

ThreadStatusName = Literal["idle", "busy", "interrupted", "error"]
MAX_LIMIT = 1000
# Past any real table; PostgreSQL's OFFSET is a bigint, which 2**63 overflows (a 500).
MAX_OFFSET = 2**31 - 1


# Metadata is stored with its object and read back on every answer and search: a bound keeps a
# careless client from parking megabytes there (the body limit alone allows MAX_BODY_BYTES).
MAX_METADATA_BYTES = 16_384
# A year: past that a TTL is no TTL.
MAX_TTL_MINUTES = 525_600


def _bounded(value: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"{size} bytes of JSON, over the limit of {MAX_METADATA_BYTES}")
    return value


Metadata = Annotated[dict[str, Any], AfterValidator(_bounded)]


class Ttl(Body):
    """A thread's time-to-live as langgraph-sdk sends it: minutes after the thread's last
    update (a run, a state update, a PATCH) at which `retention` deletes it."""

    ttl: float = Field(gt=0, le=MAX_TTL_MINUTES)
    # LangGraph's server also offers "keep_latest" (prune old checkpoints); not here.
    strategy: Literal["delete"] = "delete"


class SuperstepUpdate(Body):
    values: dict[str, Any] | None = None
    as_node: str = Field(min_length=1, max_length=200)
    # A Command in a superstep (LangGraph's server replays it as the node's output): not here.
    _unsupported = ("command",)


class Superstep(Body):
    updates: list[SuperstepUpdate] = Field(min_length=1, max_length=100)


class ThreadCreate(Body):
    thread_id: str | None = Field(default=None, min_length=1, max_length=MAX_THREAD_ID)
    metadata: Metadata = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    ttl: Ttl | None = None
    # The history to start with (how langgraph-sdk copies a thread between deployments).
    supersteps: list[Superstep] | None = Field(default=None, min_length=1, max_length=100)


class ThreadPatch(Body):
    metadata: Metadata = Field(default_factory=dict)
    ttl: Ttl | None = None


class ThreadCount(Body):
    metadata: dict[str, Any] = Field(default_factory=dict)
    status: ThreadStatusName | None = None
    _unsupported = ("values",)


class ThreadPrune(Body):
    thread_ids: list[Annotated[str, Field(min_length=1, max_length=MAX_THREAD_ID)]] = Field(
        min_length=1, max_length=MAX_LIMIT
    )
    strategy: Literal["delete", "keep_latest"] = "delete"


ThreadField = Literal[
    "thread_id", "created_at", "updated_at", "metadata", "status", "values", "interrupts", "ttl"
]
STATE_FIELDS = frozenset(
    {"values", "next", "tasks", "checkpoint", "metadata", "created_at", "parent_checkpoint"}
    | {"interrupts"}
)


def _state_fields(value: list[str] | None) -> list[str] | None:
    for name in value or ():
        if name not in STATE_FIELDS and not (name.startswith("values.") and len(name) > 7):
            raise ValueError(
                f"{name[:100]!r} is not a field of a state; select from {sorted(STATE_FIELDS)} "
                "or values.<key>"
            )
    return value


StateSelect = Annotated[
    list[Annotated[str, Field(max_length=200)]] | None,
    Field(default=None, max_length=64),
    AfterValidator(_state_fields),
]


class ThreadSearch(Body):
    metadata: dict[str, Any] = Field(default_factory=dict)
    ids: list[str] | None = None
    status: ThreadStatusName | None = None
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT, strict=True)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET, strict=True)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[ThreadField] | None = Field(default=None, min_length=1)
    # Filtering on state values would load every thread's state: not offered.
    _unsupported = ("values", "extract")


class CheckpointRef(Body):
    """A checkpoint of the thread, as langgraph-sdk sends it (other keys are ignored)."""

    checkpoint_id: str | None = None
    checkpoint_ns: str = ""


class StateUpdate(Body):
    values: dict[str, Any] | list[Any] | None = None
    as_node: str | None = Field(default=None, min_length=1, max_length=200)
    checkpoint_id: str | None = Field(default=None, min_length=1, max_length=200)
    checkpoint: CheckpointRef | None = None


class StateAtCheckpoint(Body):
    checkpoint: CheckpointRef
    select: StateSelect = None
    # Subgraph states are not expanded (a task's `state` stays null), as on GET /state.
    subgraphs: bool = False


class HistoryRequest(Body):
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT, strict=True)
    before: str | CheckpointRef | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointRef | None = None
    select: StateSelect = None


AssistantSortBy = Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"]
AssistantField = Literal[
    "assistant_id",
    "graph_id",
    "name",
    "description",
    "config",
    "context",
    "metadata",
    "version",
    "created_at",
    "updated_at",
]
# What an assistant's config may carry into its runs (the rest of a RunnableConfig is the
# service's: callbacks, run ids, checkpoint keys).
ASSISTANT_CONFIG_KEYS = frozenset({"configurable", "tags", "recursion_limit"})
Name = Annotated[str, Field(min_length=1, max_length=200)]


def _assistant_config(value: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(value) - ASSISTANT_CONFIG_KEYS)
    if unknown:
        raise ValueError(
            f"keys {unknown} are not taken; an assistant's config has "
            f"{sorted(ASSISTANT_CONFIG_KEYS)}"
        )
    # Keys the service owns (thread_id, user_id, checkpoint ids) are dropped at each run.
    if not isinstance(value.get("configurable", {}), dict):
        raise ValueError("configurable must be an object")
    limit = value.get("recursion_limit", 1)
    if (
        not isinstance(limit, int)
        or isinstance(limit, bool)
        or not 1 <= limit <= MAX_RECURSION_LIMIT
    ):
        raise ValueError(f"recursion_limit must be an integer from 1 to {MAX_RECURSION_LIMIT}")
    tags = value.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValueError("tags must be a list of strings")
    return _bounded(value)


AssistantConfig = Annotated[dict[str, Any], AfterValidator(_assistant_config)]


class AssistantSearch(Body):
    metadata: dict[str, Any] = Field(default_factory=dict)
    graph_id: str | None = None
    name: str | None = None
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT, strict=True)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET, strict=True)
    sort_by: AssistantSortBy | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[AssistantField] | None = Field(default=None, min_length=1)


class AssistantCount(Body):
    metadata: dict[str, Any] = Field(default_factory=dict)
    graph_id: str | None = None
    name: str | None = None


class AssistantCreate(Body):
    graph_id: Name
    # A UUID, as LangGraph's server takes: never a graph's name, which names its built-in one.
    assistant_id: uuid.UUID | None = None
    config: AssistantConfig = Field(default_factory=dict)
    context: Metadata = Field(default_factory=dict)
    metadata: Metadata = Field(default_factory=dict)
    name: Name | None = None
    description: str | None = Field(default=None, max_length=2000)
    if_exists: Literal["raise", "do_nothing"] = "raise"


class AssistantPatch(Body):
    graph_id: Name | None = None
    config: AssistantConfig | None = None
    context: Metadata | None = None
    metadata: Metadata | None = None
    name: Name | None = None
    description: str | None = Field(default=None, max_length=2000)


class AssistantVersionsQuery(Body):
    metadata: dict[str, Any] = Field(default_factory=dict)
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT, strict=True)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET, strict=True)


class SetLatest(Body):
    version: int = Field(ge=1, le=2**31 - 1, strict=True)


class InvokeRequest(Body):
    input: dict[str, Any]
    thread_id: str | None = Field(default=None, min_length=1, max_length=MAX_THREAD_ID)
    assistant_id: str = Field(default="main_agent", min_length=1, max_length=200)
    config: dict[str, Any] | None = None
