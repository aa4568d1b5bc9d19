"""Tuning of the graphs: a group of the service's settings (agent_service.settings), handed to
the graphs by the registry; the graphs never read the environment themselves."""

from __future__ import annotations

from agent_service.settings import GraphOptions

__all__ = ["GraphOptions"]
