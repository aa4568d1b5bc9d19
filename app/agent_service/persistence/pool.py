"""The one PostgreSQL connection pool per process, shared by the checkpointer, store and tables.

Connections heal by themselves after a failover: `check` tests each connection as it leaves
the pool, `max_lifetime`/`max_idle` recycle them before a cloud idle timeout cuts them, TCP
keepalives notice a dead peer, and a short pool `timeout` turns "database down" into a fast
error the API answers with 503 instead of a hung request.

The test is skipped for a connection that came back from a request less than
CHECK_AFTER_IDLE_SECONDS ago: it was seen working then, and under load the test (one round
trip and one server transaction per checkout) was a third of the service's transactions. The
same trade as HikariCP's `com.zaxxer.hikari.aliveBypassWindowMs` (500 ms by default,
HikariPool.getConnection in brettwooldridge/HikariCP): a connection that died in that window
fails one request, and the pool discards it when it comes back broken.

Credentials rotate without a restart: every new connection reads the current user and password
(psycopg_pool >= 3.3 accepts a callable `kwargs`, evaluated per connection:
https://www.psycopg.org/psycopg3/docs/api/pool.html#psycopg_pool.ConnectionPool, "kwargs ...
can be a callable"), and once a connection with the new credential has succeeded the pool is
drained (`drain()`: idle connections replaced now, busy ones when returned), so no connection
keeps the old one. A new credential that does not work is never forced on the pool: the
connections opened with the old one keep serving and /ready names the problem.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

import psycopg
import structlog
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from agent_service.core.credentials import Credential, RotatingCredential, database_credential
from agent_service.metrics import (
    DB_POOL_AVAILABLE,
    DB_POOL_MAX,
    DB_POOL_REQUESTS_WAITING,
    DB_POOL_SIZE,
)
from agent_service.settings import Settings

log = structlog.get_logger(__name__)

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]

# What the LangGraph savers expect of every connection: autocommit and dict rows. No
# server-side prepared statements at all (`None`; psycopg's `0` means "prepare every query"):
# PgBouncer in transaction mode before 1.21 hands a statement prepared on one server
# connection to another (https://www.pgbouncer.org/config.html#max_prepared_statements), and
# they did not pay off here: with psycopg's threshold of 5 a main_agent turn cost the same or
# more client CPU (its prepare bookkeeping) and PostgreSQL saves little planning on these
# short single-row statements (docs/benchmarks.md, "Prepared statements").
CONNECTION_KWARGS: dict[str, Any] = {
    "autocommit": True,
    "prepare_threshold": None,
    "row_factory": dict_row,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
# A failing new credential is tried again at most this often (per process).
PROBE_INTERVAL_SECONDS = 5.0
# A connection returned this recently is handed out again without a test query.
CHECK_AFTER_IDLE_SECONDS = 0.5


class PoolCredentials:
    """The pool's view of the database credential: what each new connection gets, which
    credential the open connections use, and whether a new one has been seen to work."""

    def __init__(self, settings: Settings, connect_timeout: int) -> None:
        assert settings.database_url is not None
        self.source: RotatingCredential = database_credential(settings)
        self._url = settings.database_url
        url_user = conninfo_to_dict(self._url).get("user")
        self._url_user = None if url_user is None else str(url_user)
        self._connect_timeout = connect_timeout
        self.pool: Pool | None = None
        self._verified: set[str] = set()
        # The credential the pool was last drained for: a later change (even back to an
        # earlier value) drains again.
        self._drained_for: str | None = None
        self._failure: tuple[str, str, float] | None = None  # fingerprint, reason, when
        self._probe: asyncio.Task[None] | None = None
        self._started = time.monotonic()
        self.rotated_at: float | None = None
        # When each open connection last came back to the pool in working order.
        self._returned: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = (
            weakref.WeakKeyDictionary()
        )

    def _effective(self, credential: Credential) -> Credential:
        return Credential(credential.user or self._url_user, credential.password or None)

    def kwargs(self) -> dict[str, Any]:
        """psycopg_pool calls this for every new connection."""
        credential = self.source.current()
        extra: dict[str, Any] = {}
        if credential.user is not None:
            extra["user"] = credential.user
        if credential.password is not None:
            extra["password"] = credential.password
        return {**CONNECTION_KWARGS, "connect_timeout": self._connect_timeout, **extra}

    async def returned(self, conn: AsyncConnection[Any]) -> None:
        """The pool's `reset`: a connection is back from a request (the pool has already
        rolled back an open transaction and discards a broken connection before this)."""
        self._returned[conn] = time.monotonic()

    @staticmethod
    def used_by(conn: AsyncConnection[Any]) -> Credential:
        return Credential(conn.info.user or None, conn.info.password or None)

    def current(self) -> Credential:
        return self._effective(self.source.current())

    def is_stale(self, conn: AsyncConnection[Any]) -> bool:
        used, current = self.used_by(conn), self.current()
        if current.user is None:
            # Neither DATABASE_URL nor DATABASE_USER names one: libpq's default applies.
            return used.password != current.password
        return used.fingerprint != current.fingerprint

    async def configure(self, conn: AsyncConnection[Any]) -> None:
        """A connection opened: its credential works."""
        self._verified.add(self.used_by(conn).fingerprint)

    async def check(self, conn: AsyncConnection[Any]) -> None:
        """As a connection leaves the pool: alive (else the pool replaces it), and when it
        was opened with an older credential, start replacing the pool's connections once the
        current credential is known to work. The connection itself still serves this request:
        the old credential's session stays valid after a rotation."""
        returned = self._returned.pop(conn, None)
        if returned is None or time.monotonic() - returned > CHECK_AFTER_IDLE_SECONDS:
            await AsyncConnectionPool.check_connection(conn)
        if self.is_stale(conn):
            self._renew(self.current())

    def _renew(self, current: Credential) -> None:
        fingerprint = current.fingerprint
        if fingerprint == self._drained_for:
            return
        if fingerprint in self._verified:
            self._drain(fingerprint)
            return
        if self._probe is not None and not self._probe.done():
            return
        if (
            self._failure is not None
            and self._failure[0] == fingerprint
            and time.monotonic() - self._failure[2] < PROBE_INTERVAL_SECONDS
        ):
            return
        self._probe = asyncio.get_running_loop().create_task(self._verify(current))

    async def _verify(self, current: Credential) -> None:
        reason = await self.probe(current)
        if reason is None:
            self._verified.add(current.fingerprint)
            self._failure = None
            self._drain(current.fingerprint)
        else:
            self._failure = (current.fingerprint, reason, time.monotonic())
            log.error(
                "the new database credential does not work; connections opened with the "
                "previous one keep serving",
                user=current.user,
                secret_files=[self.source.user_file, self.source.password_file],
                reason=reason,
            )

    def _drain(self, fingerprint: str) -> None:
        if self.pool is None or fingerprint == self._drained_for:
            return
        self._drained_for = fingerprint
        self.rotated_at = time.monotonic()
        log.info("database credential changed: replacing the pooled connections")
        asyncio.get_running_loop().create_task(self.pool.drain())

    async def probe(self, credential: Credential | None = None) -> str | None:
        """Open one connection with `credential` (default: the current one); None when it
        works, else the first line of the error (psycopg's messages name the host and the
        user, never the password)."""
        credential = credential or self.current()
        extra: dict[str, Any] = {}
        if credential.user is not None:
            extra["user"] = credential.user
        if credential.password is not None:
            extra["password"] = credential.password
        try:
            conn = await AsyncConnection.connect(
                self._url, connect_timeout=self._connect_timeout, **extra
            )
        except psycopg.Error as exc:
            text = str(exc).strip()
            return text.splitlines()[0] if text else type(exc).__name__
        await conn.close()
        return None

    def failure(self) -> str | None:
        """Why the current credential does not work, when a probe said so."""
        if self._failure is None or self._failure[0] != self.current().fingerprint:
            return None
        return self._failure[1]


def build_pool(settings: Settings, *, name: str = "agent-service") -> Pool:
    """Create (not open) the pool; the lifespan opens it without waiting for the database,
    so the process starts and reports not-ready while PostgreSQL is away."""
    connect_timeout = max(1, int(settings.database_pool_timeout_seconds))
    credentials = PoolCredentials(settings, connect_timeout)
    pool: Pool = AsyncConnectionPool(
        settings.database_url or "",
        kwargs=credentials.kwargs,
        min_size=settings.database_pool_min,
        max_size=settings.database_pool_max,
        timeout=settings.database_pool_timeout_seconds,
        max_lifetime=settings.database_pool_max_lifetime_seconds,
        max_idle=settings.database_pool_max_idle_seconds,
        configure=credentials.configure,
        check=credentials.check,
        reset=credentials.returned,
        open=False,
        name=name,
    )
    credentials.pool = pool
    return pool


def pool_credentials(pool: Pool) -> PoolCredentials | None:
    """The credentials object of a pool made by `build_pool`."""
    kwargs = pool.kwargs
    owner = getattr(kwargs, "__self__", None)
    return owner if isinstance(owner, PoolCredentials) else None


def publish_pool_stats(pool: Pool) -> None:
    """Copy the pool's state into the pool gauges (psycopg_pool's `get_stats()`, which also
    holds counters we leave alone: https://www.psycopg.org/psycopg3/docs/advanced/pool.html#pool-stats).
    Called on every scrape and every few seconds, so that with several workers each worker's
    gauge file is fresh whichever worker answers the scrape."""
    stats = pool.get_stats()
    DB_POOL_SIZE.set(stats.get("pool_size", 0))
    DB_POOL_AVAILABLE.set(stats.get("pool_available", 0))
    DB_POOL_MAX.set(stats.get("pool_max", pool.max_size))
    DB_POOL_REQUESTS_WAITING.set(stats.get("requests_waiting", 0))
