"""The LangGraph agent service: graphs behind a LangGraph-Server-compatible HTTP API."""

__version__ = "0.1.0"
