"""The cron scheduler on real databases: two schedulers (two pools, as two replicas would
have) on one PostgreSQL database fire each due cron exactly once; what may not fire does not."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from agent_service.auth.access import AccessPolicy
from agent_service.crons.scheduler import CronScheduler, Firing
from agent_service.persistence.backends import open_persistence
from agent_service.persistence.cron_tables import CronRecord, CronTables
from agent_service.persistence.migrations import migrate_sqlite
from agent_service.settings import Settings

from tests.app.server.conftest import fresh_database
from tools.kit.servers import PostgresServer

# Real PostgreSQL (and Redis) servers: not part of the fast suite.
pytestmark = pytest.mark.integration

CRONS = 40


class Recorder:
    """A submitter that records what it was asked to run."""

    def __init__(self) -> None:
        self.firings: list[Firing] = []

    async def __call__(self, firing: Firing) -> Mapping[str, Any]:
        self.firings.append(firing)
        await asyncio.sleep(0)  # let the other scheduler interleave
        return {"run_id": str(uuid.uuid4())}


def cron(owner: str = "alice", **overrides: Any) -> CronRecord:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "cron_id": str(uuid.uuid4()),
        "owner": owner,
        "assistant_id": "echo_agent",
        "graph_id": "echo_agent",
        "thread_id": None,
        "schedule": "*/5 * * * *",
        "timezone": None,
        "payload": {"input": {"messages": []}, "multitask_strategy": "enqueue"},
        "metadata": {"team": "a"},
        "on_run_completed": "delete",
        "enabled": True,
        "end_time": None,
        "next_run_at": now - timedelta(seconds=1),
        "created_at": now,
        "updated_at": now,
    }
    values.update(overrides)
    return CronRecord(**values)


def scheduler(crons: CronTables, submit: Recorder, **graphs: list[str]) -> CronScheduler:
    return CronScheduler(crons, submit, AccessPolicy({}, graphs), poll_seconds=0.01)


def test_two_schedulers_on_one_postgres_fire_each_due_cron_once(
    postgres_server: PostgresServer,
) -> None:
    url = fresh_database(postgres_server)

    async def scenario() -> None:
        settings = Settings(database_url=url, database_pool_min=1, database_pool_max=4)
        async with open_persistence(settings) as one, open_persistence(settings) as two:
            due = [cron() for _ in range(CRONS)]
            for record in due:
                await one.crons.create(record)
            first, second = Recorder(), Recorder()
            a, b = scheduler(one.crons, first), scheduler(two.crons, second)
            # Both poll the same due rows at the same moment, several times over.
            for _ in range(3):
                await asyncio.gather(a.tick(), b.tick())
            fired = [f.cron.cron_id for f in first.firings + second.firings]
            assert sorted(fired) == sorted(r.cron_id for r in due)
            # Each fired for its scheduled time and moved on to the next one after now.
            for record in due:
                stored = await one.crons.get(record.cron_id, "alice")
                assert stored is not None
                assert stored.next_run_at is not None
                assert stored.next_run_at > datetime.now(UTC)
            assert {f.scheduled_for for f in first.firings + second.firings} == {
                r.next_run_at for r in due
            }
            # Racing the loops for a while changes nothing: nothing is due any more.
            a.start()
            b.start()
            await asyncio.sleep(0.3)
            await a.stop()
            await b.stop()
            assert len(first.firings) + len(second.firings) == CRONS

    asyncio.run(scenario())


def test_disabled_finished_and_disallowed_crons_do_not_fire(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_persistence(Settings(sqlite_path=tmp_path / "c.sqlite")) as store:
            await migrate_sqlite(store)
            past = datetime.now(UTC) - timedelta(minutes=1)
            disabled = cron(enabled=False)
            finished = cron(next_run_at=None)
            other_graph = cron(owner="bob")
            ending = cron(end_time=datetime.now(UTC) + timedelta(seconds=30), schedule="0 0 * * *")
            thread_less = cron(next_run_at=past)
            for record in (disabled, finished, other_graph, ending, thread_less):
                await store.crons.create(record)
            recorder = Recorder()
            # bob may only use a graph that is not the cron's.
            fired = await scheduler(store.crons, recorder, bob=["research_agent"]).tick()
            assert fired == 2
            assert {f.cron.cron_id for f in recorder.firings} == {
                ending.cron_id,
                thread_less.cron_id,
            }
            # Past its end time the cron stays but never fires again.
            after = await store.crons.get(ending.cron_id, "alice")
            assert after is not None
            assert after.next_run_at is None
            # bob's refused firing was still claimed: it is not retried every poll.
            refused = await store.crons.get(other_graph.cron_id, "bob")
            assert refused is not None
            assert refused.next_run_at is not None
            assert refused.next_run_at > datetime.now(UTC)
            # The run a firing submits: the payload, the cron's metadata and where it came from.
            body = next(f for f in recorder.firings if f.cron.cron_id == thread_less.cron_id).body
            assert body.assistant_id == "echo_agent"
            assert body.multitask_strategy == "enqueue"
            assert body.on_completion == "delete"
            assert body.metadata is not None
            assert body.metadata["cron_id"] == thread_less.cron_id
            assert body.metadata["team"] == "a"

    asyncio.run(scenario())


def test_a_submitter_failure_does_not_stop_the_other_firings(tmp_path: Path) -> None:
    class Failing(Recorder):
        async def __call__(self, firing: Firing) -> Mapping[str, Any]:
            await super().__call__(firing)
            if len(self.firings) == 1:
                raise RuntimeError("queue unavailable")
            return {"run_id": "r"}

    async def scenario() -> None:
        async with open_persistence(Settings(sqlite_path=tmp_path / "c.sqlite")) as store:
            await migrate_sqlite(store)
            for _ in range(3):
                await store.crons.create(cron())
            failing = Failing()
            assert await scheduler(store.crons, failing).tick() == 2
            assert len(failing.firings) == 3

    asyncio.run(scenario())


@pytest.mark.parametrize("timezone", [None, "America/New_York"])
def test_next_firing_follows_the_timezone(timezone: str | None) -> None:
    from zoneinfo import ZoneInfo

    from agent_service.crons.schedule import next_firing

    after = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    moment = next_firing("30 9 * * *", timezone, after)
    assert moment is not None
    local = moment.astimezone(ZoneInfo(timezone or "UTC"))
    assert (local.hour, local.minute) == (9, 30)
    assert moment > after
    assert next_firing("30 9 * * *", timezone, after, end_time=after + timedelta(hours=1)) is None
