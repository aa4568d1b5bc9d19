"""Guardrails around the agents' model calls. `redact` is also the logs' PII filter."""

from agent_service.guardrails.pii import redact

__all__ = ["redact"]
