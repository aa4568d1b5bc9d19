"""The event logs of background runs, which `runs.join_stream` (one run) and
`threads.join_stream` (every background run of a thread, one after another) follow from any
replica.

With Redis (REDIS_URL) each log is a Redis stream (`XADD`): every replica reads it (`XREAD`),
and an event's stream entry id is its SSE `id`, so a client that reconnects with
`Last-Event-ID` continues after the last event it saw. Without Redis the logs live in the
process that executes the runs (the embedded SQLite deployment is one process); a replica that
does not execute the run then sees only the run's end.

A log is bounded (MAX_EVENTS, the oldest dropped first) and expires EVENTS_TTL_SECONDS after
its last event. Publishing never fails a run: with Redis away the run goes on and its followers
hear of its end from the run's record.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
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


def run_log(run_id: str) -> str:
    return f"run:{run_id}"


def thread_log(thread_id: str) -> str:
    return f"thread:{thread_id}"


class RunEventLog(Protocol):
    async def publish(self, logs: tuple[str, ...], event: str, data: Any) -> None:
        """Append the event to each of these logs."""
        ...

    async def close(self, name: str) -> None:
        """The log has ended (its run has): its followers stop after its last event."""
        ...

    async def last_id(self, name: str) -> str:
        """The id of the latest event ("0" before the first): a follower that starts here
        sees only what comes next."""
        ...

    async def read(self, name: str, after: str) -> tuple[list[Event], bool]:
        """Events after `after` (waiting up to BLOCK_MS for one), and whether the log ended."""
        ...

    async def discard(self, names: list[str]) -> None:
        """Drop these logs now (`run_log`/`thread_log` names; their runs or threads were
        deleted: a log holds the run's input and output, which must not outlive the run by
        EVENTS_TTL_SECONDS)."""
        ...


def _key(name: str) -> str:
    return f"agent:events:{name}"


class RedisRunEvents:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._warned = False

    async def publish(self, logs: tuple[str, ...], event: str, data: Any) -> None:
        payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        try:
            # One round trip for the event in every log it belongs to.
            async with self._client.pipeline(transaction=False) as pipe:
                for name in logs:
                    pipe.xadd(
                        _key(name), {"e": event, "d": payload}, maxlen=MAX_EVENTS, approximate=True
                    )
                    pipe.expire(_key(name), EVENTS_TTL_SECONDS)
                await pipe.execute()
        except RedisError as exc:
            if not self._warned:
                self._warned = True
                log.warning("run events not published (Redis)", reason=type(exc).__name__)

    async def close(self, name: str) -> None:
        await self.publish((name,), END, None)

    async def discard(self, names: list[str]) -> None:
        try:
            for start in range(0, len(names), DISCARD_BATCH):
                keys = [_key(name) for name in names[start : start + DISCARD_BATCH]]
                await self._client.delete(*keys)
        except RedisError as exc:
            # Redis is away: the logs still expire EVENTS_TTL_SECONDS after their last event.
            log.warning("run events not discarded (Redis)", reason=type(exc).__name__)

    async def last_id(self, name: str) -> str:
        entries: Any = await self._client.xrevrange(_key(name), count=1)
        return _text(entries[0][0]) if entries else "0"

    async def read(self, name: str, after: str) -> tuple[list[Event], bool]:
        answer: Any = await self._client.xread({_key(name): after}, count=500, block=BLOCK_MS)
        events: list[Event] = []
        ended = False
        for _, entries in answer or []:
            for entry_id, fields in entries:
                event = _text(fields.get(b"e", fields.get("e", b"")))
                if event == END:
                    ended = True
                    break
                raw = fields.get(b"d", fields.get("d", b"null"))
                events.append((_text(entry_id), event, json.loads(raw)))
        return events, ended


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class _Log:
    events: list[Event] = field(default_factory=list)
    ended: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    next_id: int = 1
    expiry: asyncio.TimerHandle | None = None


class LocalRunEvents:
    """The logs in this process's memory (no Redis)."""

    def __init__(self) -> None:
        self._logs: dict[str, _Log] = {}

    def _log(self, name: str) -> _Log:
        entry = self._logs.setdefault(name, _Log())
        # Forgotten an hour after the last event, as a Redis key would expire.
        if entry.expiry is not None:
            entry.expiry.cancel()
        entry.expiry = asyncio.get_running_loop().call_later(
            EVENTS_TTL_SECONDS, self._logs.pop, name, None
        )
        return entry

    async def publish(self, logs: tuple[str, ...], event: str, data: Any) -> None:
        for name in logs:
            entry = self._log(name)
            entry.events.append((str(entry.next_id), event, data))
            entry.next_id += 1
            del entry.events[:-MAX_EVENTS]
            entry.changed.set()

    async def close(self, name: str) -> None:
        entry = self._log(name)
        entry.ended = True
        entry.changed.set()

    async def discard(self, names: list[str]) -> None:
        for name in names:
            self._logs.pop(name, None)

    async def last_id(self, name: str) -> str:
        entry = self._logs.get(name)
        return entry.events[-1][0] if entry and entry.events else "0"

    async def read(self, name: str, after: str) -> tuple[list[Event], bool]:
        entry = self._logs.get(name)
        if entry is None:
            await asyncio.sleep(BLOCK_MS / 1000)
            return [], False
        position = int(after.split("-", 1)[0]) if after[:1].isdigit() else 0
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


async def follow(
    events: RunEventLog, name: str, after: str, ended: Callable[[], Awaitable[bool]]
) -> AsyncIterator[Event]:
    """Every event after `after` until the log ends, or until `ended()` (an async check of
    the run's record) says the run is over and nothing more came (its log's end was lost)."""
    quiet = 0
    while True:
        try:
            batch, done = await events.read(name, after)
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
            batch, _ = await events.read(name, after)
            for event in batch:
                yield event
            return
