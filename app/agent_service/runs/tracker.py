"""The runs executing in this process, so shutdown can let them finish and a delete can stop
the runs of what it deletes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# The message a run cancelled by a delete carries (`Finished.error`), so its client hears why.
DELETED = "its thread was deleted"
# The message a background run carries when a later claim of it superseded this execution
# (its lease ran out while it was alive; another worker executes it now).
SUPERSEDED = "another worker claimed the run"
# The messages of a run cancelled by a client (runs.cancel, or a double-text's strategy):
# `interrupt` keeps what the run checkpointed, `rollback` deletes the run and its checkpoints.
CANCEL_MESSAGES = {
    "interrupt": "the run was cancelled (interrupt)",
    "rollback": "the run was cancelled (rollback)",
}
STOP_WAIT_SECONDS = 10.0


@dataclass
class RunTracker:
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    by_thread: dict[str, set[asyncio.Task[Any]]] = field(default_factory=dict)
    by_run: dict[str, asyncio.Task[Any]] = field(default_factory=dict)

    def add(
        self, task: asyncio.Task[Any], thread_id: str | None = None, run_id: str | None = None
    ) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if run_id is not None:
            self.by_run[run_id] = task
            task.add_done_callback(lambda _: self.by_run.pop(run_id, None))
        if thread_id is not None:
            self.by_thread.setdefault(thread_id, set()).add(task)
            task.add_done_callback(lambda done: self._forget(thread_id, done))

    def _forget(self, thread_id: str, task: asyncio.Task[Any]) -> None:
        running = self.by_thread.get(thread_id)
        if running is not None:
            running.discard(task)
            if not running:
                del self.by_thread[thread_id]

    async def stop_threads(self, thread_ids: Iterable[str]) -> int:
        """Cancel this process's runs on these threads and wait until they have ended, so
        none of them writes anything after the caller deletes the threads' data. Runs on other
        replicas are stopped by their checkpointer (`persistence.guard`) once the rows are gone.
        Returns how many runs were stopped."""
        tasks = {task for tid in thread_ids for task in self.by_thread.get(tid, ())}
        for task in tasks:
            task.cancel(DELETED)
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_WAIT_SECONDS)
        return len(tasks)

    def cancel_run(self, run_id: str, action: str) -> asyncio.Task[Any] | None:
        """Cancel the run if this process executes it; its task (to await), or None."""
        task = self.by_run.get(run_id)
        if task is None or task.done():
            return None
        task.cancel(CANCEL_MESSAGES[action])
        return task

    async def drain(self, grace_seconds: float) -> int:
        """Wait up to the grace period; cancel what is still running (each run keeps its
        last checkpoint and stays resumable). Returns how many had to be cancelled."""
        pending = set(self.tasks)
        if not pending:
            return 0
        _, still_running = await asyncio.wait(pending, timeout=grace_seconds)
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running, timeout=5)
        return len(still_running)
