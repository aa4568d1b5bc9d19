"""The event log of each background run, which `runs.join_stream` follows from any replica.

With Redis (REDIS_URL) each run's events are a Redis stream (`XADD`): every replica reads it
(`XREAD`), and an event's stream entry id is its SSE `id`, so a client that reconnects with
`Last-Event-ID` continues after the last event it saw. Without Redis the log lives in the
process that executes the run (the embedded SQLite deployment is one process); a replica that
does not execute the run then sees only the run's end.

The log is bounded (MAX_EVENTS, the oldest dropped first) and expires EVENTS_TTL_SECONDS after
its last event. Publishing never fails a run: with Redis away the run goes on and its followers
hear of its end from the run's record.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

MAX_EVENTS = 10_000
EVENTS_TTL_SECONDS = 3600
# Keys per DEL when the runs of a deleted user or thread go.
DISCARD_BATCH = 500
# Below the Redis client's socket timeout (core.redis_clients), so a blocking read is not an
# error; also how often a follower with nothing to read looks at the run's record.
BLOCK_MS = 250
# The marker a finished run's log ends with (never sent to a client).
END = "__end__"

Event = tuple[str, str, Any]  # (id, event name, data)


def _key(run_id: str) -> str:
    return f"agent:run-events:{run_id}"


class RunEventLog(Protocol):
    async def publish(self, run_id: str, event: str, data: Any) -> None: ...

    async def close(self, run_id: str) -> None:
        """The run has ended: its followers stop after its last event."""
        ...

    async def last_id(self, run_id: str) -> str:
        """The id of the latest event ("0" before the first): a follower that starts here
        sees only what comes next."""
        ...

    async def read(self, run_id: str, after: str) -> tuple[list[Event], bool]:
        """Events after `after` (waiting up to BLOCK_MS for one), and whether the log ended."""
        ...

    async def discard(self, run_ids: list[str]) -> None:
        """Drop these runs' logs now (their runs were deleted: a log holds the run's input and
        output, which must not outlive the run by EVENTS_TTL_SECONDS)."""
        ...


class RedisRunEvents:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._warned = False

    async def _add(self, run_id: str, event: str, data: Any) -> None:
        try:
            key = _key(run_id)
            payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
            await self._client.xadd(
                key, {"e": event, "d": payload}, maxlen=MAX_EVENTS, approximate=True
            )
            await self._client.expire(key, EVENTS_TTL_SECONDS)
        except RedisError as exc:
            if not self._warned:
                self._warned = True
                log.warning("run events not published (Redis)", reason=type(exc).__name__)

    async def publish(self, run_id: str, event: str, data: Any) -> None:
        await self._add(run_id, event, data)

    async def close(self, run_id: str) -> None:
        await self._add(run_id, END, None)

    async def discard(self, run_ids: list[str]) -> None:
        try:
            for start in range(0, len(run_ids), DISCARD_BATCH):
                keys = [_key(run_id) for run_id in run_ids[start : start + DISCARD_BATCH]]
                await self._client.delete(*keys)
        except RedisError as exc:
            # Redis is away: the logs still expire EVENTS_TTL_SECONDS after their last event.
            log.warning("run events not discarded (Redis)", reason=type(exc).__name__)

    async def last_id(self, run_id: str) -> str:
        entries: Any = await self._client.xrevrange(_key(run_id), count=1)
        return _text(entries[0][0]) if entries else "0"

    async def read(self, run_id: str, after: str) -> tuple[list[Event], bool]:
        answer: Any = await self._client.xread({_key(run_id): after}, count=500, block=BLOCK_MS)
        events: list[Event] = []
        ended = False
        for _, entries in answer or []:
            for entry_id, fields in entries:
                name = _text(fields.get(b"e", fields.get("e", b"")))
                if name == END:
                    ended = True
                    break
                raw = fields.get(b"d", fields.get("d", b"null"))
                events.append((_text(entry_id), name, json.loads(raw)))
        return events, ended


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class _Log:
    events: list[Event] = field(default_factory=list)
    ended: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    next_id: int = 1


class LocalRunEvents:
    """The log in this process's memory (no Redis)."""

    def __init__(self) -> None:
        self._logs: dict[str, _Log] = {}

    def _log(self, run_id: str) -> _Log:
        return self._logs.setdefault(run_id, _Log())

    async def publish(self, run_id: str, event: str, data: Any) -> None:
        entry = self._log(run_id)
        entry.events.append((str(entry.next_id), event, data))
        entry.next_id += 1
        del entry.events[:-MAX_EVENTS]
        entry.changed.set()

    async def close(self, run_id: str) -> None:
        entry = self._log(run_id)
        entry.ended = True
        entry.changed.set()
        asyncio.get_running_loop().call_later(EVENTS_TTL_SECONDS, self._logs.pop, run_id, None)

    async def discard(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            self._logs.pop(run_id, None)

    async def last_id(self, run_id: str) -> str:
        entry = self._logs.get(run_id)
        return entry.events[-1][0] if entry and entry.events else "0"

    async def read(self, run_id: str, after: str) -> tuple[list[Event], bool]:
        entry = self._logs.get(run_id)
        if entry is None:
            await asyncio.sleep(BLOCK_MS / 1000)
            return [], False
        position = int(after) if after.isdigit() else 0
        events = [e for e in entry.events if int(e[0]) > position]
        if not events and not entry.ended:
            entry.changed.clear()
            try:
                await asyncio.wait_for(entry.changed.wait(), BLOCK_MS / 1000)
            except TimeoutError:
                return [], False
            events = [e for e in entry.events if int(e[0]) > position]
        return events, entry.ended and (not events or events[-1] == entry.events[-1])


def run_event_log(client: aioredis.Redis | None) -> RunEventLog:
    return LocalRunEvents() if client is None else RedisRunEvents(client)


async def follow(events: RunEventLog, run_id: str, after: str, ended: Any) -> AsyncIterator[Event]:
    """Every event after `after` until the log ends, or until `ended()` (an async check of
    the run's record) says the run is over and nothing more came (its log's end was lost)."""
    quiet = 0
    while True:
        try:
            batch, done = await events.read(run_id, after)
        except RedisError as exc:
            log.warning("run events unreadable (Redis)", reason=type(exc).__name__)
            batch, done = [], False
            await asyncio.sleep(BLOCK_MS / 1000)
        for event in batch:
            after = event[0]
            yield event
        if done:
            return
        quiet = 0 if batch else quiet + 1
        # About once a second without events: is the run still going?
        if quiet and quiet % 4 == 0 and await ended():
            batch, _ = await events.read(run_id, after)
            for event in batch:
                yield event
            return
