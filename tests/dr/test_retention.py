"""Retention: old threads deleted through the checkpointer, expired store items swept."""

from __future__ import annotations

import psycopg
import pytest

from tests.dr.conftest import DrEnv
from tests.dr.dataset import write_dataset

pytestmark = pytest.mark.integration


def _threads_with_checkpoints(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT DISTINCT thread_id FROM checkpoints").fetchall()
    return {str(row[0]) for row in rows}


def test_old_threads_go_recent_ones_stay_and_a_rerun_is_safe(dr: DrEnv) -> None:
    url = dr.database()
    threads = set(write_dataset(url))
    old = {"alice-thread-0", "bob-thread-1"}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE agent_threads SET updated_at = now() - interval '91 days' "
            "WHERE thread_id = ANY(%s)",
            (list(old),),
        )
        conn.execute(
            "UPDATE store SET expires_at = now() - interval '1 minute', ttl_minutes = 1 "
            "WHERE prefix = 'users.carol.memories'"
        )
    dry = dr.command("retention", "--dry-run", database_url=url)
    assert dry.report()["threads_deleted"] == 2
    assert _threads_with_checkpoints(url) == threads

    first = dr.command("retention", database_url=url, checkpoint_cleanup_days="90")
    assert first.returncode == 0, first.stderr
    assert first.report()["threads_deleted"] == 2
    assert first.report()["store_items_expired"] >= 1
    assert _threads_with_checkpoints(url) == threads - old
    with psycopg.connect(url) as conn:
        owners = conn.execute("SELECT thread_id FROM agent_threads").fetchall()
        carol = conn.execute("SELECT count(*) FROM store WHERE prefix = 'users.carol.memories'")
        assert carol.fetchone() == (0,)
    assert {str(row[0]) for row in owners} == threads - old

    again = dr.command("retention", database_url=url)
    assert again.returncode == 0, again.stderr
    assert again.report()["threads_deleted"] == 0
    assert again.report()["orphaned_threads_deleted"] == 0
    assert again.report()["store_items_expired"] == 0
    assert _threads_with_checkpoints(url) == threads - old


def test_a_run_interrupted_after_its_claim_is_finished_by_the_next(dr: DrEnv) -> None:
    url = dr.database()
    threads = set(write_dataset(url))
    interrupted, fresh = "alice-thread-1", "carol-thread-0"
    with psycopg.connect(url, autocommit=True) as conn:
        # What a run killed between claiming a thread and the checkpointer leaves behind:
        # checkpoints without a thread record. `fresh` has no record either but is recent
        # (an in-flight delete, say): the age test keeps it.
        conn.execute("DELETE FROM agent_threads WHERE thread_id = ANY(%s)", ([interrupted, fresh],))
        conn.execute(
            "UPDATE checkpoints SET checkpoint = jsonb_set(checkpoint, '{ts}', "
            "to_jsonb(now() - interval '120 days')) WHERE thread_id = %s",
            (interrupted,),
        )
    dry = dr.command("retention", "--dry-run", database_url=url)
    assert dry.report()["orphaned_threads_deleted"] == 1
    assert _threads_with_checkpoints(url) == threads
    first = dr.command("retention", database_url=url)
    assert first.returncode == 0, first.stderr
    assert (first.report()["threads_deleted"], first.report()["orphaned_threads_deleted"]) == (
        0,
        1,
    )
    assert _threads_with_checkpoints(url) == threads - {interrupted}
    again = dr.command("retention", database_url=url)
    assert again.report()["orphaned_threads_deleted"] == 0
    assert _threads_with_checkpoints(url) == threads - {interrupted}


def test_retention_needs_postgresql(dr: DrEnv) -> None:
    outcome = dr.command("retention")
    assert outcome.returncode == 1
    assert "retention runs against PostgreSQL (DATABASE_URL)" in outcome.stderr
