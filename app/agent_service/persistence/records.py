"""What the service tables hold, independent of the database behind them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]
SortBy = Literal["thread_id", "status", "created_at", "updated_at"]
SortOrder = Literal["asc", "desc"]


# A change of a thread's TTL: leave it, clear it (None) or set it (minutes).
KEEP_TTL: Literal["keep"] = "keep"
TtlChange = float | None | Literal["keep"]


class ThreadExistsError(Exception):
    """A thread with that id exists already."""


@dataclass(frozen=True)
class ThreadRecord:
    thread_id: str
    owner: str
    graph_id: str | None
    metadata: dict[str, Any]
    status: ThreadStatus
    created_at: datetime
    updated_at: datetime
    # Minutes after its last update at which `retention` deletes the thread (None: never).
    ttl_minutes: float | None = None


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    thread_id: str | None
    owner: str
    assistant_id: str
    graph_id: str
    status: RunStatus
    metadata: dict[str, Any]
    multitask_strategy: str
    error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RunStart:
    """What `start_run` found. The thread is looked up as the run's owner sees it, in the
    same statement as the claim: a run on an existing thread costs one transaction before
    its graph runs, not a read and then a write."""

    started: bool
    # False: the owner has no thread with that id (nothing was written).
    thread_found: bool
    # The thread's graph before the claim (None: it had none, or there is no thread).
    thread_graph_id: str | None = None


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    principal: str
    action: str
    subject: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ThreadQuery:
    owner: str
    metadata: dict[str, Any] = field(default_factory=dict)
    ids: list[str] | None = None
    status: ThreadStatus | None = None
    limit: int = 10
    offset: int = 0
    sort_by: SortBy = "created_at"
    sort_order: SortOrder = "desc"


class AssistantExistsError(Exception):
    """An assistant with that id exists already (the caller's or another principal's)."""


# Versions one assistant keeps. Each may hold a request body's worth of config (1 MiB) and
# `assistants.get_versions` reads them all: unbounded, a loop of updates filled the database
# and then the memory of whoever listed them.
MAX_ASSISTANT_VERSIONS = 100


class AssistantVersionLimitError(Exception):
    """The assistant has MAX_ASSISTANT_VERSIONS versions already."""


@dataclass(frozen=True)
class AssistantFields:
    """What one version of an assistant holds."""

    graph_id: str
    name: str
    description: str | None
    config: dict[str, Any]
    context: dict[str, Any]
    metadata: dict[str, Any]


@dataclass(frozen=True)
class AssistantRecord:
    """An assistant at one version (its latest, unless read from its versions)."""

    assistant_id: str
    owner: str
    version: int
    fields: AssistantFields
    created_at: datetime
    updated_at: datetime


class AssistantTables(Protocol):
    """Assistants created through the API, per owner, with every version kept. Every method
    scoped to an owner only ever sees that owner's rows."""

    async def create_assistant(
        self, assistant_id: str, owner: str, fields: AssistantFields
    ) -> AssistantRecord:
        """Version 1 of a new assistant; AssistantExistsError when the id is taken."""
        ...

    async def get_assistant(self, assistant_id: str, owner: str) -> AssistantRecord | None: ...

    async def owner_assistants(self, owner: str) -> list[AssistantRecord]: ...

    async def add_assistant_version(
        self, assistant_id: str, owner: str, fields: AssistantFields
    ) -> AssistantRecord | None:
        """A new version, made the latest; None when the owner has no such assistant."""
        ...

    async def assistant_versions(self, assistant_id: str, owner: str) -> list[AssistantRecord]:
        """Every version, newest first (empty: no such assistant of the owner's)."""
        ...

    async def set_latest_assistant(
        self, assistant_id: str, owner: str, version: int
    ) -> AssistantRecord | None: ...

    async def delete_assistant(self, assistant_id: str, owner: str) -> bool: ...

    async def delete_owner_assistants(self, owner: str) -> int: ...


class ServiceTables(AssistantTables, Protocol):
    """Thread ownership, runs, assistants and the audit log. Every method scoped to an owner
    only ever sees that owner's rows: isolation between principals is enforced here, in SQL."""

    async def ping(self) -> None: ...

    async def missing_tables(self) -> list[str]:
        """The service's tables (and, on PostgreSQL, functions) the schema lacks."""
        ...

    async def create_thread(
        self, thread_id: str, owner: str, metadata: dict[str, Any], graph_id: str | None
    ) -> ThreadRecord: ...

    async def get_thread(self, thread_id: str, owner: str) -> ThreadRecord | None: ...

    async def thread_owner(self, thread_id: str) -> str | None:
        """Who owns the thread now (None: no such thread). Not for answering a client."""
        ...

    async def search_threads(self, query: ThreadQuery) -> list[ThreadRecord]: ...

    async def delete_thread(self, thread_id: str, owner: str) -> bool: ...

    async def count_threads(self, query: ThreadQuery) -> int:
        """How many of the owner's threads match (limit, offset and sort ignored)."""
        ...

    async def update_thread(
        self, thread_id: str, owner: str, metadata: dict[str, Any], ttl: TtlChange
    ) -> ThreadRecord | None:
        """Merge `metadata` into the thread's (top-level keys; a null value stays null, as in
        LangGraph's server) and apply `ttl`; None when the owner has no such thread."""
        ...

    async def set_thread_graph(self, thread_id: str, owner: str, graph_id: str) -> None: ...

    async def acquire_thread(
        self, thread_id: str, owner: str, run_id: str, lease_seconds: float
    ) -> bool: ...

    async def renew_lease(self, thread_id: str, run_id: str, lease_seconds: float) -> None: ...

    async def release_thread(self, thread_id: str, run_id: str, status: ThreadStatus) -> None: ...

    async def create_run(self, run: RunRecord) -> None: ...

    async def finish_run(self, run_id: str, status: RunStatus, error: str | None) -> None: ...

    async def start_run(
        self, run: RunRecord, lease_seconds: float, *, queued_holds: bool = False
    ) -> RunStart:
        """`acquire_thread`, `set_thread_graph` and `create_run` as one transaction, on the
        owner's thread only and only while the thread has no other graph. Not started (and
        nothing written) when another run holds the thread's lease, or with `queued_holds`
        when a queued run of the thread has not ended (the `reject` strategy)."""
        ...

    async def end_run(
        self,
        run_id: str,
        thread_id: str,
        status: RunStatus,
        error: str | None,
        thread_status: ThreadStatus,
    ) -> None:
        """`finish_run` and `release_thread` as one transaction (released only while the
        run still holds the lease)."""
        ...

    async def get_run(self, run_id: str, owner: str) -> RunRecord | None: ...

    async def user_threads(self, owner: str) -> list[ThreadRecord]: ...

    async def user_runs(self, owner: str) -> list[RunRecord]: ...

    async def audit(
        self, principal: str, action: str, subject: str, detail: dict[str, Any]
    ) -> None: ...

    async def audit_entries(self, subject: str) -> list[AuditRecord]: ...

    async def delete_user(self, owner: str) -> tuple[int, int]: ...
