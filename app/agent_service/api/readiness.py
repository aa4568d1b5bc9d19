"""Readiness: the database (reachable and migrated), the cache and the checkpointer.

A busy pool never makes the service unready either: when no pooled connection frees up within
POOL_PING_TIMEOUT_SECONDS, a fresh connection tells whether the database answers; if it does,
the pod is busy, not broken, and taking it out of the endpoints would only move its load onto
the others (and flap). The whole check stays within READINESS_BUDGET_SECONDS, below the chart's
probe timeout (a test compares the two).

The cache never makes the service unready: with Redis away the node cache and the rate
limiter fall back to in-process state, and taking every replica out of the load balancer for
a cache outage would turn a degradation into an outage. Its check reports "degraded" instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import psycopg
import psycopg_pool

from agent_service.api.deps import Services
from agent_service.persistence.errors import describe_unavailable
from agent_service.persistence.pool import PoolCredentials, pool_credentials

DATABASE_CHECK_TIMEOUT_SECONDS = 2.5
CHECKPOINTER_CHECK_TIMEOUT_SECONDS = 1.5
# The database and checkpointer checks run one after the other; the cache's alongside.
READINESS_BUDGET_SECONDS = DATABASE_CHECK_TIMEOUT_SECONDS + CHECKPOINTER_CHECK_TIMEOUT_SECONDS
POOL_PING_TIMEOUT_SECONDS = 1.0
_PROBE_THREAD = "agent-service-readiness-probe"


async def _timed(check: Awaitable[dict[str, Any]], seconds: float) -> dict[str, Any]:
    try:
        async with asyncio.timeout(seconds):
            return await check
    except TimeoutError:
        return {"ok": False, "detail": f"no answer within {seconds:g} s"}
    except Exception as exc:
        return {"ok": False, "detail": describe_unavailable(exc)}


async def _direct_probe(services: Services) -> str | None:
    """Why the pool has no connection: None when a fresh connection with the current credential
    answers (the pool is only busy), else its error, which names the cause (refused, unknown
    host, authentication) where the pool can only say it timed out. An authentication failure
    names the secret files the credential comes from."""
    pool = services.persistence.pool
    credentials = None if pool is None else pool_credentials(pool)
    if credentials is None:
        try:
            conn = await psycopg.AsyncConnection.connect(
                services.settings.database_conninfo(), connect_timeout=1
            )
        except psycopg.Error as exc:
            text = str(exc).strip()
            return text.splitlines()[0] if text else type(exc).__name__
        try:
            await conn.execute("SELECT 1")
        finally:
            await conn.close()
        return None
    reason = await credentials.probe()
    return None if reason is None else reason + _credential_hint(credentials, reason)


def _credential_hint(credentials: PoolCredentials, reason: str) -> str:
    if "authentication" not in reason and "password" not in reason:
        return ""
    source = credentials.source
    where = (
        f"secret files {source.user_file}/{source.password_file} (re-read per connection)"
        if source.rotates
        else "DATABASE_USER/DATABASE_PASSWORD as set at start-up"
    )
    return f" (credential from {where})"


async def _database(services: Services) -> dict[str, Any]:
    tables = services.persistence.tables
    pool = services.persistence.pool
    if pool is None:
        await tables.ping()
    else:
        try:
            async with pool.connection(timeout=POOL_PING_TIMEOUT_SECONDS) as conn:
                await conn.execute("SELECT 1")
        except (psycopg_pool.PoolTimeout, psycopg.OperationalError):
            reason = await _direct_probe(services)
            if reason is not None:
                return {"ok": False, "detail": f"the database is unavailable: {reason}"}
            stats = pool.get_stats()
            if stats.get("pool_size", 0) < pool.max_size or stats.get("pool_available", 0) > 0:
                # Not every connection is out serving requests: the pool is still
                # (re)connecting after an outage, and a request would wait for it too.
                return {
                    "ok": False,
                    "detail": "the database answers but the pool has no connection ready yet",
                }
            waiting = stats.get("requests_waiting", 0)
            return {
                "ok": True,
                "busy": True,
                "detail": "the database answers; every pooled connection is busy "
                f"({waiting} requests waiting): ready, the schema was not re-checked",
            }
        credentials = pool_credentials(pool)
        failure = None if credentials is None else credentials.failure()
        if credentials is not None and failure is not None:
            # Connections opened with the previous credential still serve; new ones fail.
            # Ready but degraded: taking every pod out of the load balancer for a bad secret
            # would start the outage early. Once those connections are gone the pool check
            # above fails and names the same cause.
            return {
                "ok": True,
                "degraded": True,
                "detail": "the current database credential is refused: "
                + failure
                + _credential_hint(credentials, failure)
                + "; connections opened with the previous credential still serve",
            }
    missing = await tables.missing_tables()
    if missing:
        return {
            "ok": False,
            "detail": "schema not migrated: missing tables "
            + ", ".join(missing)
            + "; run `agent-service migrate`",
        }
    return {"ok": True, "detail": f"{services.persistence.backend} reachable, schema migrated"}


async def _checkpointer(services: Services) -> dict[str, Any]:
    await services.persistence.checkpointer.aget_tuple(
        {"configurable": {"thread_id": _PROBE_THREAD, "checkpoint_ns": ""}}
    )
    return {"ok": True, "detail": "checkpoint read succeeded"}


async def _cache(services: Services) -> dict[str, Any]:
    if services.redis is None:
        return {"ok": True, "detail": "in-process (REDIS_URL unset)"}
    try:
        await services.redis.ping()
    except Exception as exc:
        return {
            "ok": True,
            "degraded": True,
            "detail": f"redis unreachable ({type(exc).__name__}): node cache and rate limiter "
            "fall back to in-process",
        }
    return {"ok": True, "detail": "redis reachable"}


async def readiness(services: Services) -> tuple[bool, dict[str, Any]]:
    cache_check = asyncio.ensure_future(
        _timed(_cache(services), CHECKPOINTER_CHECK_TIMEOUT_SECONDS)
    )
    database = await _timed(_database(services), DATABASE_CHECK_TIMEOUT_SECONDS)
    if database.get("busy"):
        # The checkpointer shares the pool: it would only wait for the same connections.
        checkpointer = {"ok": True, "detail": "not checked: the pool is busy"}
    elif database["ok"]:
        # The database answers again: let requests through without waiting out the cool-down.
        services.database_circuit.reset()
        checkpointer = await _timed(_checkpointer(services), CHECKPOINTER_CHECK_TIMEOUT_SECONDS)
    else:
        # Same database: waiting out the pool timeout again would only slow the probe.
        checkpointer = {"ok": False, "detail": "not checked: the database is unavailable"}
    cache = await cache_check
    checks = {"database": database, "cache": cache, "checkpointer": checkpointer}
    ready = all(check["ok"] for check in checks.values())
    return ready, {"status": "ready" if ready else "not_ready", "checks": checks}
