"""The runs executing in this process, so shutdown can let them finish."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunTracker:
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def add(self, task: asyncio.Task[Any]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

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
