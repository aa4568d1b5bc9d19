"""What each drill measured: printed as it finishes and repeated in pytest's summary."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

RESULTS: list[str] = []


@dataclass
class Figures:
    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    # (monotonic start, status) of every request, for drills that look at a timeline.
    timeline: list[tuple[float, float, int]] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)

    def add(self, status: int, seconds: float, started: float = 0.0) -> None:
        self.statuses.append(status)
        self.latencies.append(seconds)
        self.timeline.append((started, seconds, status))

    @property
    def errors(self) -> int:
        return sum(status != 200 for status in self.statuses)

    def percentile(self, q: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1]

    def line(self) -> str:
        parts = [
            f"{self.name}: requests={len(self.statuses)}",
            f"errors={self.errors}",
            f"p50={self.percentile(50) * 1000:.0f}ms",
            f"p99={self.percentile(99) * 1000:.0f}ms",
            *(f"{key}={value}" for key, value in self.extra.items()),
        ]
        return " ".join(parts)

    def report(self) -> None:
        line = self.line()
        RESULTS.append(line)
        print(line)
