"""The cron scheduler: every CRON_POLL_SECONDS it reads the due crons and fires each one whose
firing it claims.

A claim is one conditional UPDATE of the cron's `next_run_at` (`CronTables.claim`): of several
replicas that read the same due cron, one moves it on and fires, the others see zero rows. A
claim is committed before the run is submitted, so a process dying in between loses that one
firing rather than firing twice (at most once, like crontab on a host that was down). Firings
missed while no scheduler ran are not replayed: the cron fires once and moves to its next time
after now.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from agent_service.auth.access import AccessPolicy
from agent_service.crons.schedule import next_firing
from agent_service.metrics import CRON_FIRINGS
from agent_service.persistence.cron_tables import CronRecord, CronTables
from agent_service.runs.models import RunCreate

log = structlog.get_logger(__name__)

# Due crons handled per poll; more wait for the next poll (a burst cannot starve the loop).
BATCH = 100


@dataclass(frozen=True)
class Firing:
    """One claimed firing: the run to submit on the owner's behalf."""

    cron: CronRecord
    scheduled_for: datetime
    body: RunCreate

    @property
    def owner(self) -> str:
        return self.cron.owner

    @property
    def thread_id(self) -> str | None:
        return self.cron.thread_id


class RunSubmitter(Protocol):
    """Stores (or starts) the run of a firing and returns its run record."""

    async def __call__(self, firing: Firing) -> Mapping[str, Any]: ...


def run_body(cron: CronRecord, scheduled_for: datetime) -> RunCreate:
    """The run a firing submits: the cron's payload, its metadata plus where it came from."""
    payload = dict(cron.payload)
    metadata = {
        **cron.metadata,
        "cron_id": cron.cron_id,
        "cron_scheduled_for": scheduled_for.isoformat(),
    }
    body: dict[str, Any] = {**payload, "assistant_id": cron.assistant_id, "metadata": metadata}
    if cron.thread_id is None:
        body["on_completion"] = cron.on_run_completed or "delete"
    return RunCreate.model_validate(body)


class CronScheduler:
    def __init__(
        self,
        crons: CronTables,
        submit: RunSubmitter,
        access: AccessPolicy,
        *,
        poll_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._crons = crons
        self._submit = submit
        self._access = access
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> int:
        """Fire every due cron this scheduler claims; how many it submitted."""
        now = self._clock()
        submitted = 0
        for cron in await self._crons.due(now, BATCH):
            expected = cron.next_run_at
            if expected is None:
                continue
            following = next_firing(cron.schedule, cron.timezone, now, cron.end_time)
            if not await self._crons.claim(cron.cron_id, expected, following):
                continue  # another replica fired it
            if await self._fire(cron, expected):
                submitted += 1
        return submitted

    async def _fire(self, cron: CronRecord, scheduled_for: datetime) -> bool:
        fields = {"cron_id": cron.cron_id, "graph": cron.graph_id}
        if not self._access.may_run(cron.owner, cron.graph_id):
            CRON_FIRINGS.labels(outcome="refused").inc()
            log.warning("cron not fired: graph not allowed (PRINCIPAL_GRAPHS)", **fields)
            return False
        try:
            body = run_body(cron, scheduled_for)
        except ValueError as exc:
            CRON_FIRINGS.labels(outcome="refused").inc()
            log.warning("cron not fired: invalid payload", error=str(exc)[:300], **fields)
            return False
        try:
            run = await self._submit(Firing(cron=cron, scheduled_for=scheduled_for, body=body))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            CRON_FIRINGS.labels(outcome="failed").inc()
            log.warning("cron not fired: run not submitted", error=type(exc).__name__, **fields)
            return False
        CRON_FIRINGS.labels(outcome="submitted").inc()
        log.info("cron fired", run_id=str(run.get("run_id", "")), **fields)
        return True

    async def run_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cron scheduler poll failed", error=type(exc).__name__)
            await asyncio.sleep(self._poll_seconds)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run_forever(), name="cron-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
