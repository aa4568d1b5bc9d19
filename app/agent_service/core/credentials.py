"""Credentials that may change while the process runs: read from their secret file whenever a
new connection is opened, so a rotated password reaches the service without a restart.

Kubernetes updates a mounted Secret's files in place (an atomic symlink swap) when the Secret
changes, unless the volume is mounted with subPath
(https://kubernetes.io/docs/concepts/configuration/secret/#using-secrets-as-files-from-a-pod,
"Mounted Secrets are updated automatically"); External Secrets rewrites the Secret on its
refresh interval (https://external-secrets.io/latest/api/externalsecret/). Reading the file per
connection is what turns those two into a rotation without a rollout.

The settings model decides a setting's source once (an environment variable wins over the
secret file, for local use): a credential re-reads its file only when the file was the source.
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from agent_service.settings import Settings

# The files are read at most this often: the Redis clients ask on every command. Kubernetes
# takes up to a minute or more to update a mounted Secret anyway.
READ_INTERVAL_SECONDS = 0.5


@dataclass(frozen=True)
class Credential:
    """A user name (None: the URL's) and a password (None: none). Never log it: `repr` hides
    the password."""

    user: str | None
    password: str | None

    @functools.cached_property
    def fingerprint(self) -> str:
        """Tells two credentials apart without holding the password in a comparable form.
        Computed once per credential: the pool compares it on every connection checkout."""
        text = f"{self.user or ''}\0{self.password or ''}".encode()
        return hashlib.sha256(text).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Credential(user={self.user!r}, password=***)"


def _read(path: Path) -> str | None:
    try:
        # Secret files are usually written with a trailing newline (the settings strip it too).
        return path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, IsADirectoryError):
        return None


def _plain(value: SecretStr | str | None) -> str | None:
    if value is None:
        return None
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class _Field:
    """One setting: its value at start-up, and its file when that file was its source."""

    def __init__(self, settings: Settings, name: str) -> None:
        loaded = _plain(getattr(settings, name))
        path = settings.secrets_dir / name
        on_disk = _read(path)
        self.loaded = loaded
        # Equal values: the file was the source (or both agree, and then either will do).
        self.path = path if on_disk is not None and on_disk == loaded else None
        # The last value read, kept when the file is briefly missing during a swap.
        self.last = loaded

    def current(self) -> str | None:
        if self.path is None:
            return self.loaded
        value = _read(self.path)
        if value:
            self.last = value
        return self.last


class RotatingSecret:
    """One secret setting's current value (None: unset), its file re-read at most every
    READ_INTERVAL_SECONDS when the file was its source."""

    def __init__(self, settings: Settings, name: str) -> None:
        self._field = _Field(settings, name)
        self._cached: tuple[str | None, float] | None = None

    def current(self) -> str | None:
        now = time.monotonic()
        if self._cached is None or now - self._cached[1] >= READ_INTERVAL_SECONDS:
            self._cached = (self._field.current(), now)
        return self._cached[0]


class RotatingCredential:
    """The current user and password of one service (PostgreSQL or Redis)."""

    def __init__(self, settings: Settings, user: str, secret: str) -> None:
        self._user = _Field(settings, user)
        self._password = _Field(settings, secret)
        self.user_file = user
        self.password_file = secret
        # When each credential was first seen.
        self._seen: dict[str, float] = {}
        self._cached: tuple[Credential, float] | None = None

    @property
    def rotates(self) -> bool:
        """Whether a file is re-read (otherwise the credential is fixed for the process)."""
        return self._user.path is not None or self._password.path is not None

    def current(self) -> Credential:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[1] < READ_INTERVAL_SECONDS:
            return self._cached[0]
        credential = Credential(self._user.current(), self._password.current())
        self._seen.setdefault(credential.fingerprint, now)
        self._cached = (credential, now)
        return credential

    def seen_since(self, credential: Credential) -> float:
        """Monotonic time this credential was first read."""
        return self._seen.get(credential.fingerprint, time.monotonic())


def database_credential(settings: Settings) -> RotatingCredential:
    return RotatingCredential(settings, "database_user", "database_password")


def redis_credential(settings: Settings) -> RotatingCredential:
    return RotatingCredential(settings, "redis_username", "redis_password")
