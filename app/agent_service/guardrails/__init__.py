"""Guardrails around the agents' model calls. `redact` is also the logs' PII filter; it is
re-exported from the dependency-free `redaction` module, so importing it loads no langchain."""

from agent_service.guardrails.redaction import redact

__all__ = ["redact"]
