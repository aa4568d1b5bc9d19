"""The PostgreSQL claim's guard, deterministically: a worker whose SELECT saw a run before
another worker claimed it (READ COMMITTED: the row lock was already released when it reached
the row) must not take it too. Found by the two-instance test as an occasional double run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from agent_service.persistence.backends import open_persistence
from agent_service.persistence.records import RunRecord
from agent_service.persistence.run_queue_postgres import Lost, PostgresRunQueue

from tests.app.server.conftest import fresh_database, make_settings
from tools.kit.servers import PostgresServer

pytestmark = pytest.mark.integration


def _run(run_id: str, thread_id: str) -> RunRecord:
    now = datetime.now(UTC)
    return RunRecord(
        run_id=run_id,
        thread_id=thread_id,
        owner="alice",
        assistant_id="echo_agent",
        graph_id="echo_agent",
        status="pending",
        metadata={},
        multitask_strategy="reject",
        error=None,
        created_at=now,
        updated_at=now,
    )


def test_a_run_claimed_by_one_worker_cannot_be_taken_by_another(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    settings = make_settings(tmp_path, database_url=fresh_database(postgres_server))

    async def scenario() -> None:
        async with open_persistence(settings) as persistence:
            queue = persistence.queue
            assert isinstance(queue, PostgresRunQueue)
            assert persistence.pool is not None
            await persistence.tables.create_thread("t1", "alice", {}, "echo_agent")
            await queue.enqueue(
                _run("r1", "t1"), {"assistant_id": "echo_agent"}, stateless=False, delay_seconds=0
            )
            first = await queue.claim("worker-a", 30)
            assert first is not None
            assert (first.run.run_id, first.attempts) == ("r1", 1)
            # Worker B acts on a stale SELECT that still showed r1 pending.
            async with persistence.pool.connection() as conn:
                with pytest.raises(Lost):
                    async with conn.transaction():
                        await queue.take(conn, "r1", "t1", "worker-b", 30)
            assert await queue.claim("worker-b", 30) is None
            # Once worker A's lease has run out (its process died), B may take the run over.
            async with persistence.pool.connection() as conn:
                await conn.execute(
                    "UPDATE agent_threads SET lease_expires_at = now() - interval '1 second' "
                    "WHERE thread_id = 't1'"
                )
            second = await queue.claim("worker-b", 30)
            assert second is not None
            assert (second.run.run_id, second.attempts) == ("r1", 2)

    asyncio.run(scenario())
