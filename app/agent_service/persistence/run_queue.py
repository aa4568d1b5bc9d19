"""What the run queue's tables hold and the operations on them, independent of the database.

A background run is a row of `agent_runs` plus one of `agent_run_queue` (its request, when it
may start, how often it was claimed, its output). Its lease is its thread's lease: a worker
claims the run and its thread in one transaction, and renews the thread's lease while the run
lives; a run `running` whose thread lease expired lost its worker and is claimed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from agent_service.persistence.records import RunRecord, RunStatus

CancelAction = Literal["interrupt", "rollback"]
# Statuses of a run that has not ended.
ACTIVE_STATUSES: tuple[RunStatus, ...] = ("pending", "running")


@dataclass(frozen=True)
class QueuedRun:
    run: RunRecord
    kwargs: dict[str, Any]
    stateless: bool
    attempts: int


@dataclass(frozen=True)
class RunListQuery:
    thread_id: str
    owner: str
    status: RunStatus | None = None
    limit: int = 10
    offset: int = 0


class RunQueueTables(Protocol):
    """Every method scoped to an owner only sees that owner's runs."""

    async def enqueue(
        self, run: RunRecord, kwargs: dict[str, Any], *, stateless: bool, delay_seconds: float
    ) -> None:
        """Store a pending run (its `agent_runs` row and its queue row, in one transaction)."""
        ...

    async def claim(self, worker: str, lease_seconds: float) -> QueuedRun | None:
        """Take the oldest runnable run whose thread is free: mark it running and give its
        thread's lease to it, atomically; None when there is none."""
        ...

    async def get_run(self, run_id: str, owner: str) -> RunRecord | None:
        """The run with its live status: a queued run whose worker died reads `pending`."""
        ...

    async def list_runs(self, query: RunListQuery) -> list[RunRecord]: ...

    async def active_run_ids(self, thread_id: str) -> list[str]:
        """Runs of the thread that have not ended (pending, or running under a live lease)."""
        ...

    async def cancel_pending(self, run_ids: list[str], *, delete: bool) -> list[str]:
        """End the runs that are still pending (not claimed): status `interrupted`, or deleted
        with `delete`. Returns those it ended."""
        ...

    async def request_cancel(self, run_id: str, action: CancelAction) -> None: ...

    async def cancel_requests(self, run_ids: list[str]) -> dict[str, CancelAction]: ...

    async def set_output(self, run_id: str, output: Any) -> None: ...

    async def get_output(self, run_id: str) -> tuple[bool, Any]:
        """(is a queued run, its output or None)."""
        ...

    async def queued_kwargs(self, run_id: str) -> dict[str, Any] | None:
        """The stored request of a queued run (None: not a queued run)."""
        ...

    async def delete_run(self, run_id: str, owner: str) -> bool:
        """Delete a run that has ended (a pending or running one is kept: cancel it first)."""
        ...

    async def rollback_run(self, thread_id: str, run_id: str) -> None:
        """Delete the run and every checkpoint (and its writes) the run wrote on the thread."""
        ...

    async def runs_matching(
        self, owner: str, thread_id: str | None, run_ids: list[str] | None, statuses: list[str]
    ) -> list[RunRecord]:
        """The owner's runs (live status) among `run_ids` / on `thread_id`, in `statuses`."""
        ...

    async def depth(self) -> int:
        """Runs that could start now on as many workers: threads with a pending run that is
        due (the runs of one thread execute one after another, so they count once)."""
        ...

    async def renew_claim(
        self, thread_id: str, run_id: str, attempt: int, lease_seconds: float
    ) -> bool:
        """Renew the thread's lease for the execution that made claim number `attempt` of the
        run; False when a later claim (another worker, after this one's lease ran out while it
        was still alive) or a delete superseded it."""
        ...

    async def hand_back(self, run_id: str) -> None:
        """A run its worker stopped on purpose (shutdown): that claim is not counted, so only
        the claims of workers that died count towards MAX_RUN_CLAIMS. Its status stays
        `running` under a released lease (read as `pending`): a cancel then reaches it through
        the next claim, which with `rollback` deletes the checkpoints it already wrote."""
        ...

    async def owner_active_count(self, owner: str) -> int:
        """The owner's background runs that have not ended (pending, delayed or running)."""
        ...
