"""A known data set written as the service writes it: main_agent runs on PostgreSQL, several
users, several threads each, several checkpoints per thread, memories in the store."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from agent_service.graphs.build import build_graphs
from agent_service.llm.offline import OfflineChatModel
from agent_service.persistence.backends import open_persistence
from agent_service.settings import Settings
from langgraph.cache.memory import InMemoryCache

USERS = ("alice", "bob", "carol")
THREADS_PER_USER = 2


def write_dataset(url: str) -> list[str]:
    """Write the data set into the migrated database at `url`; returns the thread ids."""

    async def write() -> list[str]:
        threads: list[str] = []
        async with open_persistence(Settings(database_url=url)) as persistence:
            agent = build_graphs(
                checkpointer=persistence.checkpointer,
                store=persistence.store,
                cache=InMemoryCache(),
                model=OfflineChatModel(),
            )["main_agent"]
            for user in USERS:
                for n in range(THREADS_PER_USER):
                    thread_id = f"{user}-thread-{n}"
                    await persistence.tables.create_thread(thread_id, user, {}, "main_agent")
                    config: Any = {"configurable": {"thread_id": thread_id, "user_id": user}}
                    for text in (f"remember that {user} likes item {n}", "hello", "recall"):
                        message = {"role": "user", "content": text}
                        await agent.ainvoke({"messages": [message]}, config)
                    threads.append(thread_id)
        return threads

    return asyncio.run(write())


def table_digests(url: str) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent digest of every user table's contents."""
    digests: dict[str, tuple[int, str]] = {}
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' ORDER BY table_name"
        ).fetchall()
        for (table,) in tables:
            query = psycopg.sql.SQL(
                "SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') "
                "FROM {} AS t"
            ).format(psycopg.sql.Identifier(table))
            row = conn.execute(query).fetchone()
            assert row is not None
            digests[str(table)] = (int(row[0]), str(row[1]))
    return digests


def table_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        return int(row[0]) if row else 0


def databases(url: str) -> set[str]:
    """Names of the databases on the server of `url`."""
    with psycopg.connect(url) as conn:
        return {str(row[0]) for row in conn.execute("SELECT datname FROM pg_database")}
