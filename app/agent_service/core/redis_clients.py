"""Redis clients that fail fast: the rate limiter and the node cache both fall back to
in-process state, so a Redis outage must cost a few milliseconds per call, not seconds of
retries with backoff.

They authenticate as the Redis user of REDIS_USERNAME (an ACL user locally, an ElastiCache RBAC
user in AWS) with a password read per connection through redis-py's `CredentialProvider`
(https://redis.readthedocs.io/en/stable/examples/connection_examples.html#Connecting-to-a-redis-instance-with-standard-credential-provider):
a connection authenticated with a credential that has since changed is reconnected the next
time the pool hands it out, so a rotation reaches every connection without a restart and the
old password can be revoked once it has.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
import redis.asyncio.connection as aioconnection
import redis.connection as connection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.credentials import CredentialProvider
from redis.retry import Retry

from agent_service.core.credentials import RotatingCredential, redis_credential
from agent_service.settings import Settings

SOCKET_TIMEOUT_SECONDS = 0.5


class FileCredentialProvider(CredentialProvider):
    """The Redis user and password as they are now (re-read from their secret files)."""

    def __init__(self, source: RotatingCredential) -> None:
        self.source = source

    def fingerprint(self) -> str:
        return self.source.current().fingerprint

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        credential = self.source.current()
        password = credential.password or ""
        return (credential.user, password) if credential.user else (password,)

    async def get_credentials_async(self) -> tuple[str] | tuple[str, str]:
        return self.get_credentials()


def _stale(conn: Any) -> bool:
    provider = conn.credential_provider
    if not isinstance(provider, FileCredentialProvider):
        return False
    return bool(getattr(conn, "auth_fingerprint", None) != provider.fingerprint())


def _remember(conn: Any) -> None:
    provider = conn.credential_provider
    if isinstance(provider, FileCredentialProvider):
        conn.auth_fingerprint = provider.fingerprint()


class _AsyncRotating(aioconnection.AbstractConnection):
    async def connect(self) -> None:
        if self.is_connected and _stale(self):
            await self.disconnect()
        await super().connect()  # type: ignore[no-untyped-call]

    async def on_connect_check_health(self, check_health: bool = True) -> None:
        _remember(self)
        await super().on_connect_check_health(check_health)


class AsyncRotatingConnection(_AsyncRotating, aioconnection.Connection):
    pass


class AsyncRotatingSSLConnection(_AsyncRotating, aioconnection.SSLConnection):
    pass


class _SyncRotating(connection.AbstractConnection):
    def connect(self) -> None:
        if self._sock is not None and _stale(self):
            self.disconnect()
        super().connect()  # type: ignore[no-untyped-call]

    def on_connect_check_health(self, check_health: bool = True) -> None:
        _remember(self)
        super().on_connect_check_health(check_health)


class RotatingConnection(_SyncRotating, connection.Connection):
    pass


class RotatingSSLConnection(_SyncRotating, connection.SSLConnection):
    pass


class AsyncRotatingPool(aioredis.ConnectionPool):
    """Drops its idle connections when the credential changed: they would otherwise keep the
    old one until used (the connection class handles those that were busy)."""

    _seen: str | None = None

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        provider = self.connection_kwargs.get("credential_provider")
        if isinstance(provider, FileCredentialProvider):
            fingerprint = provider.fingerprint()
            if self._seen is not None and fingerprint != self._seen:
                await self.disconnect(inuse_connections=False)
            self._seen = fingerprint
        return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]


class RotatingPool(redis.ConnectionPool):
    _seen: str | None = None

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        provider = self.connection_kwargs.get("credential_provider")
        if isinstance(provider, FileCredentialProvider):
            fingerprint = provider.fingerprint()
            if self._seen is not None and fingerprint != self._seen:
                self.disconnect(inuse_connections=False)
            self._seen = fingerprint
        return super().get_connection(*args, **kwargs)


def _client_options(settings: Settings) -> dict[str, Any]:
    return {
        "credential_provider": FileCredentialProvider(redis_credential(settings)),
        "socket_timeout": SOCKET_TIMEOUT_SECONDS,
        "socket_connect_timeout": SOCKET_TIMEOUT_SECONDS,
        "health_check_interval": 30,
    }


def async_redis(settings: Settings) -> aioredis.Redis | None:
    if settings.redis_url is None:
        return None
    pool = AsyncRotatingPool.from_url(
        settings.redis_url, retry=AsyncRetry(NoBackoff(), 0), **_client_options(settings)
    )
    # from_url picks the TLS class for rediss://; keep that choice, add the re-authentication.
    pool.connection_class = (
        AsyncRotatingSSLConnection
        if issubclass(pool.connection_class, aioconnection.SSLConnection)
        else AsyncRotatingConnection
    )
    client: aioredis.Redis = aioredis.Redis.from_pool(pool)
    return client


def sync_redis(settings: Settings) -> redis.Redis | None:
    if settings.redis_url is None:
        return None
    pool = RotatingPool.from_url(
        settings.redis_url, retry=Retry(NoBackoff(), 0), **_client_options(settings)
    )
    pool.connection_class = (
        RotatingSSLConnection
        if issubclass(pool.connection_class, connection.SSLConnection)
        else RotatingConnection
    )
    client: redis.Redis = redis.Redis.from_pool(pool)
    return client
