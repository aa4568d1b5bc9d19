"""API keys (header `X-API-Key`, the one langgraph-sdk sends) mapped to principals.

Keys are compared in constant time, against every configured key, so neither timing nor the
position of a match tells a caller anything. Only SHA-256 digests are kept in memory after
start-up, and no key ever reaches a log line.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from pydantic import SecretStr

API_KEY_HEADER = "x-api-key"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class ApiKeyAuthenticator:
    def __init__(self, keys: Mapping[str, SecretStr]) -> None:
        # Whitespace around a key is never part of it (a secret file's newline, a pasted
        # space); HTTP drops it around a header value anyway, at either end.
        self._digests = [
            (principal, _digest(key.get_secret_value().strip())) for principal, key in keys.items()
        ]

    @property
    def configured(self) -> bool:
        return bool(self._digests)

    @property
    def principals(self) -> list[str]:
        return [principal for principal, _ in self._digests]

    def authenticate(self, presented: str | None) -> str | None:
        """The principal owning `presented`, or None."""
        # Configured keys are read with surrounding whitespace stripped (a secret file's
        # newline); a presented key is read the same way, at both ends alike.
        presented = (presented or "").strip()
        if not presented:
            return None
        candidate = _digest(presented)
        found: str | None = None
        for principal, digest in self._digests:
            # No early exit: every request costs the same whichever key (if any) matches.
            if hmac.compare_digest(candidate, digest):
                found = principal
        return found
