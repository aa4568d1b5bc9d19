"""The tags every taggable resource carries: owner, environment and cost-centre.

They are set twice on purpose: as the AWS provider's `default_tags` (so nothing created
through it escapes them) and explicitly on each resource (so the policy pack and `make plan`,
which only see resource inputs, can check them).
"""

from __future__ import annotations

from dataclasses import dataclass

REQUIRED_TAG_KEYS = ("owner", "environment", "cost-centre")


@dataclass(frozen=True)
class Tags:
    owner: str
    environment: str
    cost_centre: str
    project: str = "agent-platform"

    def base(self) -> dict[str, str]:
        return {
            "owner": self.owner,
            "environment": self.environment,
            "cost-centre": self.cost_centre,
            "project": self.project,
            "managed-by": "pulumi",
        }

    def named(self, name: str, **extra: str) -> dict[str, str]:
        """The base tags plus the console's `Name` and any resource-specific ones."""
        return {**self.base(), "Name": name, **extra}
