"""The database work of one turn: transactions and rows written per run on one thread, N
sequential turns, from PostgreSQL's own counters (pg_stat_database deltas for the database
the server uses) and, per statement, from pg_stat_statements.

The server's own idle work (background-run workers and the cron scheduler polling) is measured
in an idle window first and subtracted: it is a rate per second and process, not work a turn
does. pg_stat_database lags: since PostgreSQL 15 a backend flushes its counters at most once a
second while busy and within PGSTAT_IDLE_INTERVAL (10 s) of going idle
(https://www.postgresql.org/docs/15/monitoring-stats.html, "accumulated statistics ... are
not updated continuously"; src/backend/utils/activity/pgstat.c), so each reading waits that
long. pg_stat_statements counts in shared memory at the end of each statement: no wait.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from tools.bench.inprocess import config_for, open_graphs, turn_input
from tools.kit.load import say

# PGSTAT_IDLE_INTERVAL (10 s) and a margin.
STATS_SETTLE_SECONDS = 11.0
TOP_STATEMENTS = 12
# Each reading is one autocommit SELECT on a connection of its own: one transaction of ours.
READING_TRANSACTIONS = 1


def _read(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback AS transactions, tup_inserted AS inserted, "
            "tup_updated AS updated, tup_deleted AS deleted "
            "FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return {key: int(value) for key, value in row.items()}


def _statements(url: str, reset: bool) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        if reset:
            conn.execute("SELECT pg_stat_statements_reset()")
            return []
        rows = conn.execute(
            "SELECT query, calls, rows FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND query NOT LIKE %s ORDER BY calls DESC LIMIT %s",
            ("%pg_stat_statements%", TOP_STATEMENTS),
        ).fetchall()
    return [dict(row) for row in rows]


def enable_statements(url: str) -> bool:
    """CREATE EXTENSION pg_stat_statements in the database; False when the server did not
    preload it (then only pg_stat_database is read)."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("SELECT count(*) FROM pg_stat_statements")
    except psycopg.Error:
        return False
    return True


def _checkpoints(url: str, thread_id: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = %s", (thread_id,)
        ).fetchone()
    return int(row[0]) if row else 0


async def _counted(
    url: str,
    thread_id: str,
    turns: int,
    one_turn: Callable[[int], Awaitable[None]],
    statements: bool,
) -> dict[str, Any]:
    await one_turn(-1)  # the thread's first turn (and any lazy set-up) is not counted
    await asyncio.sleep(STATS_SETTLE_SECONDS)
    # An idle window first: what the server does with no request (its queue workers and cron
    # scheduler poll) goes on through the counted window and its settling wait too; that rate
    # is subtracted from the turns' count and reported on its own.
    idle_from, idle_started = _read(url), time.monotonic()
    await asyncio.sleep(STATS_SETTLE_SECONDS)
    before, counted_started = _read(url), time.monotonic()
    idle_per_second = (
        before["transactions"] - idle_from["transactions"] - READING_TRANSACTIONS
    ) / (counted_started - idle_started)
    checkpoints_before = _checkpoints(url, thread_id)
    if statements:
        _statements(url, reset=True)
    for turn in range(turns):
        await one_turn(turn)
    top = _statements(url, reset=False) if statements else []
    checkpoints = _checkpoints(url, thread_id) - checkpoints_before
    await asyncio.sleep(STATS_SETTLE_SECONDS)
    after = _read(url)
    background = max(0.0, idle_per_second) * (time.monotonic() - counted_started)
    ours = READING_TRANSACTIONS + (2 if statements else 0) + 1  # readings + checkpoint count
    return {
        "turns": turns,
        "idle_transactions_per_second": idle_per_second,
        "transactions_per_turn": (
            after["transactions"] - before["transactions"] - ours - background
        )
        / turns,
        "rows_inserted_per_turn": (after["inserted"] - before["inserted"]) / turns,
        "rows_updated_per_turn": (after["updated"] - before["updated"]) / turns,
        "rows_deleted_per_turn": (after["deleted"] - before["deleted"]) / turns,
        "checkpoints_per_turn": checkpoints / turns,
        "statements": [
            {"query": " ".join(s["query"].split())[:160], "calls_per_turn": s["calls"] / turns}
            for s in top
        ],
    }


async def service_turns(
    base_url: str,
    headers: dict[str, str],
    database_url: str,
    graph: str,
    turns: int,
    statements: bool,
) -> dict[str, Any]:
    """`turns` sequential `runs/wait` on one thread of the running service."""
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120) as http:
        created = await http.post("/threads", json={})
        created.raise_for_status()
        thread_id = str(created.json()["thread_id"])

        async def one_turn(turn: int) -> None:
            answer = await http.post(
                f"/threads/{thread_id}/runs/wait",
                json={"assistant_id": graph, "input": say(f"turn {turn}")},
            )
            answer.raise_for_status()

        return await _counted(database_url, thread_id, turns, one_turn, statements)


async def inprocess_turns(
    database_url: str, graph: str, turns: int, statements: bool
) -> dict[str, Any]:
    """The same turns through the graph alone on the durable saver: what the graph needs."""
    thread_id = f"bench-{uuid.uuid4().hex[:12]}"
    async with open_graphs("PostgreSQL", database_url) as graphs:
        compiled = graphs[graph]

        async def one_turn(turn: int) -> None:
            await compiled.ainvoke(turn_input(f"turn {turn}"), config_for(thread_id))

        return await _counted(database_url, thread_id, turns, one_turn, statements)


def timed(coroutine: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    started = time.monotonic()
    result = asyncio.run(coroutine)
    return {**result, "seconds": time.monotonic() - started}
