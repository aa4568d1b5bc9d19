"""`agent-service migrate`: create or upgrade the checkpointer, store and service tables.

Run by the chart's pre-install/pre-upgrade hook Job; the server itself never migrates
PostgreSQL. Exits non-zero with one line on stderr when it cannot.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import psycopg
import psycopg_pool

from agent_service.commands.common import InvalidSettings, command_settings
from agent_service.embeddings import EmbeddingsConfigError, embedding_dims, store_index
from agent_service.persistence.backends import open_persistence
from agent_service.persistence.migrations import (
    EmbeddingDimsMismatch,
    embed_memories,
    migrate_postgres,
    migrate_sqlite,
)
from agent_service.persistence.roles import MissingExtension
from agent_service.persistence.schema import SCHEMA_VERSION
from agent_service.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Reads DATABASE_URL (and DATABASE_PASSWORD); without it migrates the embedded "
        "SQLite file at SQLITE_PATH."
    )


async def _migrate(settings: Settings) -> str:
    embedded_note = ""
    if settings.database_url is not None:
        backend = "postgres"
        conninfo = settings.database_conninfo()
        applied = await migrate_postgres(conninfo, embedding_dims=embedding_dims(settings))
        index = store_index(settings)
        if index is not None:
            embedded = await embed_memories(conninfo, index)
            if embedded:
                embedded_note = f"; {embedded} memory(ies) embedded for search"
    else:
        async with open_persistence(settings) as persistence:
            applied = await migrate_sqlite(persistence)
        backend = f"sqlite ({settings.sqlite_path})"
    return (
        f"migrate: {backend} schema at version {SCHEMA_VERSION} "
        f"({applied} service migration(s) applied{embedded_note})"
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = command_settings()
    except InvalidSettings as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 2
    try:
        message = asyncio.run(_migrate(settings))
    except (MissingExtension, EmbeddingsConfigError, EmbeddingDimsMismatch) as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    except (psycopg.Error, psycopg_pool.PoolTimeout, OSError) as exc:
        # psycopg messages name host and database, never the password.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"migrate: cannot migrate the database: {first_line}", file=sys.stderr)
        return 1
    print(message)
    return 0
