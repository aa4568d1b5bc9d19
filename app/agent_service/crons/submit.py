"""A firing's run goes on the durable run queue (`runs.queue.submit_run`) like a client's
`runs.create`: recorded in agent_runs, executed once by whichever worker claims it, its webhook
POSTed when it ends."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from agent_service.crons.scheduler import Firing
from agent_service.runs.queue import RunQueue, submit_run


class QueueSubmitter:
    def __init__(self, queue: RunQueue) -> None:
        self._queue = queue

    async def __call__(self, firing: Firing) -> Mapping[str, Any]:
        record = await submit_run(self._queue, firing.owner, firing.thread_id, firing.body)
        return dataclasses.asdict(record)
