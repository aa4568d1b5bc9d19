"""Background runs: stored `pending` in the database, executed by workers that claim them.

`submit_run` stores a run and returns its record at once; it needs no HTTP request (the cron
scheduler calls it too). Workers run in every API process (`RUN_WORKERS` at once) and in
`agent-service worker` processes; each claims the oldest runnable run whose thread is free
(PostgreSQL: `FOR UPDATE SKIP LOCKED`, so replicas never take the same run) together with
its thread's lease, and renews that lease while the run executes. When a process dies, its
runs' leases expire within RUN_LEASE_SECONDS and another worker claims them again; a run
claimed again continues from the last checkpoint it wrote (`RunEngine.resume_queued`).

A cancel reaches the process executing the run through `agent_run_cancels`, which every
process polls for the runs it executes (inline runs too: a double-text with `interrupt` from
another replica must stop them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
import structlog
from pydantic import ValidationError

from agent_service.auth.access import AccessPolicy
from agent_service.graphs.assistants import AssistantCatalog
from agent_service.graphs.source import Graphs
from agent_service.metrics import RUN_QUEUE_DEPTH
from agent_service.persistence.backends import Persistence
from agent_service.persistence.guard import ThreadGone
from agent_service.persistence.records import RunRecord
from agent_service.persistence.run_queue import ACTIVE_STATUSES, CancelAction, QueuedRun
from agent_service.runs.engine import (
    Finished,
    RunEngine,
    cancel_action,
    run_error_type,
    run_failure_message,
)
from agent_service.runs.events import run_event_log, run_log, thread_log
from agent_service.runs.models import RunCreate
from agent_service.runs.tracker import DELETED, RunTracker
from agent_service.settings import Settings

log = structlog.get_logger(__name__)

# How often a process looks for cancel requests of the runs it executes.
CANCEL_POLL_SECONDS = 0.25
# How a waiting caller (join, cancel with wait) polls a run that executes elsewhere.
WAIT_POLL_FIRST_SECONDS = 0.02
WAIT_POLL_MAX_SECONDS = 0.25
DEPTH_PUBLISH_SECONDS = 5.0
# Claims of a run whose worker died each time (a SIGTERM's hand-back is not counted). A run
# that takes its process down (out of memory, a native crash) would otherwise be claimed again
# after every lease and take down each worker in turn, for ever.
MAX_RUN_CLAIMS = 5


class RunQueue:
    """The process's side of the queue: its workers, its cancel watcher, and what the API
    asks of background runs (submit, wait for the end, cancel)."""

    def __init__(
        self,
        *,
        settings: Settings,
        persistence: Persistence,
        graphs: Graphs,
        catalog: AssistantCatalog,
        access: AccessPolicy,
        tracker: RunTracker,
        redis: aioredis.Redis | None = None,
    ) -> None:
        self.settings = settings
        self.persistence = persistence
        self.tables = persistence.queue
        self._graphs = graphs
        self._catalog = catalog
        self._access = access
        self.tracker = tracker
        self.events = run_event_log(redis)
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = asyncio.Event()
        # Notified when this process starts a queued run: its joiners stop polling at once.
        self._started = asyncio.Condition()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._executing: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def engine(self) -> RunEngine:
        settings = self.settings
        return RunEngine(
            persistence=self.persistence,
            graphs=self._graphs,
            catalog=self._catalog,
            tracker=self.tracker,
            access=self._access,
            timeout_seconds=settings.request_timeout_seconds,
            background_timeout_seconds=settings.background_run_timeout_seconds,
            lease_seconds=settings.run_lease_seconds,
            settings=settings,
        )

    # ----- lifecycle ---------------------------------------------------------------------

    def start(self, workers: int) -> None:
        """Start the cancel watcher, and `workers` concurrent run slots (0: none)."""
        self._spawn(self._watch_cancels(), "run-cancel-watcher")
        # Every process exports the depth: the API's pods scale a worker Deployment by it.
        self._spawn(self._publish_depth(), "run-queue-depth")
        if workers > 0:
            self._spawn(self._work(workers), "run-queue-worker")
        log.info("run queue started", worker=self.name, slots=workers)

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Stop claiming. Runs still executing are the tracker's to drain: a background run
        cancelled by the drain goes back to the queue (`RunEngine._finish`)."""
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ----- submitting --------------------------------------------------------------------

    async def submit(
        self,
        principal: str,
        thread_id: str | None,
        body: RunCreate,
        *,
        after_seconds: float | None = None,
    ) -> RunRecord:
        delay = after_seconds if after_seconds is not None else body.after_seconds or 0.0
        record = await self.engine().submit(principal, thread_id, body, delay_seconds=delay)
        if not delay:
            self._wake.set()
        return record

    # ----- working -----------------------------------------------------------------------

    async def _work(self, slots: int) -> None:
        free = asyncio.Semaphore(slots)
        poll = self.settings.run_queue_poll_seconds
        while not self._stopping:
            await free.acquire()
            try:
                queued = await self.tables.claim(self.name, self.settings.run_lease_seconds)
            except Exception as exc:
                free.release()
                log.warning("could not claim a queued run", reason=type(exc).__name__)
                await asyncio.sleep(poll)
                continue
            if queued is None:
                free.release()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), poll)
                continue
            task = asyncio.create_task(self._execute(queued), name=f"queued-{queued.run.run_id}")
            self._executing.add(task)
            task.add_done_callback(self._executing.discard)
            task.add_done_callback(lambda _: free.release())

    async def _execute(self, queued: QueuedRun) -> None:
        engine = self.engine()
        run = queued.run
        log.info("queued run claimed", run_id=run.run_id, attempt=queued.attempts, worker=self.name)
        if queued.attempts > MAX_RUN_CLAIMS:
            await self._abandon(queued)
            return
        try:
            prepared = await engine.resume_queued(queued)
        except Exception as exc:
            # The stored request no longer fits (a graph removed by a deploy): the run fails.
            if isinstance(exc, ValidationError):
                # Its message quotes the stored values (a message, a webhook's token): the
                # log names the fields and what was wrong with them only.
                problems = [
                    {"field": ".".join(str(part) for part in error["loc"]), "type": error["type"]}
                    for error in exc.errors(include_url=False, include_input=False)
                ]
                log.error("queued run could not start", run_id=run.run_id, problems=problems)
            else:
                log.error("queued run could not start", run_id=run.run_id, exc_info=exc)
            assert run.thread_id is not None
            await self.persistence.tables.finish_run(run.run_id, "error", run_failure_message(exc))
            await self.persistence.tables.release_thread(run.thread_id, run.run_id, "error")
            await self.events.close(run_log(run.run_id))
            return
        running = engine.start(prepared, stream=True)
        async with self._started:
            self._started.notify_all()
        run_id = run.run_id
        # Each event goes to the run's log and to its thread's (threads.join_stream).
        logs = (run_log(run_id), thread_log(prepared.thread_id))
        await self.events.publish(
            logs,
            "metadata",
            {"run_id": run_id, "thread_id": run.thread_id, "attempt": queued.attempts},
        )
        async for item in running.events():
            if isinstance(item, Finished):
                await self._publish_end(run, logs, item)
                break
            await self.events.publish(logs, *item)
        # A run that ends frees its thread: the next queued run of the thread may start now.
        self._wake.set()

    async def _abandon(self, queued: QueuedRun) -> None:
        run = queued.run
        assert run.thread_id is not None
        message = (
            f"the run was given up: its worker stopped {queued.attempts - 1} times while "
            f"executing it (at most {MAX_RUN_CLAIMS}; the run may crash its process)"
        )
        log.error("queued run given up", run_id=run.run_id, attempts=queued.attempts - 1)
        await self.persistence.tables.finish_run(run.run_id, "error", message)
        await self.persistence.tables.release_thread(run.thread_id, run.run_id, "error")
        logs = (run_log(run.run_id), thread_log(run.thread_id))
        await self.events.publish(logs, "error", {"error": "RunError", "message": message})
        await self.events.close(logs[0])
        self._wake.set()

    async def _publish_end(self, run: RunRecord, logs: tuple[str, ...], finished: Finished) -> None:
        gone = finished.error
        if isinstance(gone, ThreadGone) or (gone is not None and DELETED in gone.args):
            # Deleted with its thread or its user: its log goes too, including what this
            # execution published after the delete had discarded it.
            await self.events.discard([logs[0]])
            return
        action = cancel_action(finished)
        if finished.outcome == "cancelled" and action is None:
            # Handed back to the queue (shutdown): the next worker continues this log.
            return
        if finished.outcome == "error":
            error = {
                "error": run_error_type(finished.error),
                "message": run_failure_message(finished.error),
            }
            await self.events.publish(logs, "error", error)
        elif finished.outcome == "timeout":
            timeout = self.settings.background_run_timeout_seconds
            message = f"the run exceeded BACKGROUND_RUN_TIMEOUT_SECONDS ({timeout:g} s)"
            await self.events.publish(logs, "error", {"error": "timeout", "message": message})
        elif action is not None:
            message = f"the run was cancelled ({action})"
            await self.events.publish(logs, "error", {"error": "UserInterrupt", "message": message})
        ended = await self.tables.get_run(run.run_id, run.owner)
        status = "deleted" if ended is None else ended.status
        await self.events.publish(logs[1:], "run_done", {"run_id": run.run_id, "status": status})
        await self.events.close(logs[0])

    async def _watch_cancels(self) -> None:
        while True:
            await asyncio.sleep(CANCEL_POLL_SECONDS)
            local = list(self.tracker.by_run)
            if not local:
                continue
            try:
                requests = await self.tables.cancel_requests(local)
            except Exception as exc:
                log.warning("could not read cancel requests", reason=type(exc).__name__)
                continue
            for run_id, action in requests.items():
                if self.tracker.cancel_run(run_id, action) is not None:
                    log.info("run cancelled", run_id=run_id, action=action)

    async def _publish_depth(self) -> None:
        while True:
            try:
                RUN_QUEUE_DEPTH.set(await self.tables.depth())
            except Exception as exc:
                log.warning("could not read the queue depth", reason=type(exc).__name__)
            await asyncio.sleep(DEPTH_PUBLISH_SECONDS)

    # ----- waiting and cancelling --------------------------------------------------------

    async def wait_ended(self, run_id: str, owner: str, seconds: float) -> RunRecord | None:
        """The run once it has ended, or as it is after `seconds`; None once it is gone
        (deleted, rolled back)."""
        deadline = time.monotonic() + seconds
        delay = WAIT_POLL_FIRST_SECONDS
        while True:
            record = await self.tables.get_run(run_id, owner)
            remaining = deadline - time.monotonic()
            if record is None or record.status not in ACTIVE_STATUSES or remaining <= 0:
                return record
            task = self.tracker.by_run.get(run_id)
            if task is not None:
                # Executing here: its end is an event, not a poll.
                await asyncio.wait({task}, timeout=remaining)
                continue
            # Polled: another process may execute it. Started here, it wakes us at once.
            with contextlib.suppress(TimeoutError):
                async with self._started:
                    await asyncio.wait_for(self._started.wait(), min(delay, remaining))
            delay = min(delay * 2, WAIT_POLL_MAX_SECONDS)

    async def cancel(self, record: RunRecord, action: CancelAction) -> None:
        await self.engine().cancel_runs([record.run_id], action)


async def submit_run(
    queue: RunQueue,
    principal: str,
    thread_id: str | None,
    body: RunCreate,
    *,
    after_seconds: float | None = None,
) -> RunRecord:
    """Store a background run (on `thread_id`, or stateless with None) for `principal`, to
    start after `after_seconds` (default: the body's, else now); returns its `pending` record.
    Raises the `RunError`s and `Forbidden` an inline run would (unknown assistant, thread not
    found, busy thread under multitask_strategy 'reject', ...)."""
    return await queue.submit(principal, thread_id, body, after_seconds=after_seconds)
