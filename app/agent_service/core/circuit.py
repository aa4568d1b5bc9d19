"""A minimal circuit breaker: after a failure, skip the remote for a short cool-down."""

from __future__ import annotations

import time


class Circuit:
    def __init__(self, cool_down_seconds: float = 5.0) -> None:
        self._cool_down = cool_down_seconds
        self._open_until = 0.0

    @property
    def closed(self) -> bool:
        """True when the remote may be tried."""
        return time.monotonic() >= self._open_until

    def reset(self) -> None:
        """The remote answered: try it again at once."""
        self._open_until = 0.0

    def trip(self) -> bool:
        """Record a failure; True when this failure opened a closed circuit."""
        was_closed = self.closed
        self._open_until = time.monotonic() + self._cool_down
        return was_closed
