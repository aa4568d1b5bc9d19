"""Which exceptions mean "the database is unavailable" (answered 503, retry later) rather
than a bug (500)."""

from __future__ import annotations

import sqlite3

import psycopg
import psycopg.errors
import psycopg_pool

UNAVAILABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg_pool.PoolTimeout,
    psycopg_pool.PoolClosed,
    sqlite3.OperationalError,
)
NOT_MIGRATED: tuple[type[Exception], ...] = (psycopg.errors.UndefinedTable,)


def describe_unavailable(exc: BaseException) -> str:
    if isinstance(exc, NOT_MIGRATED):
        return "the database schema is not migrated: run `agent-service migrate`"
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return "no database connection became available in time"
    return f"the database is unavailable ({type(exc).__name__})"


def is_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, UNAVAILABLE + NOT_MIGRATED)
