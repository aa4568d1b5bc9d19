"""JSON logs on stdout through structlog, for our own events and for uvicorn's and the
libraries' stdlib loggers alike. Every string value passes through the guardrails' PII
redaction (the same function the agents use), and fields that could hold a credential are
dropped before rendering."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

# Dependency-free: loading it does not load the graphs or langchain.
from agent_service.guardrails.redaction import redact as redact_pii

Redactor = Callable[[str], str]

_SECRET_FIELDS = frozenset(
    {"api_key", "x-api-key", "x_api_key", "authorization", "password", "token", "secret"}
)


def _scrub(value: Any, redact: Redactor) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            k: _scrub(v, redact) for k, v in value.items() if str(k).lower() not in _SECRET_FIELDS
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, redact) for v in value]
    return value


def redaction_processor(redact: Redactor) -> structlog.types.Processor:
    def process(
        _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event_dict):
            if key.lower() in _SECRET_FIELDS:
                del event_dict[key]
            elif key not in ("timestamp", "level", "logger"):
                event_dict[key] = _scrub(event_dict[key], redact)
        return event_dict

    return process


def _not_the_apps_error(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Exception in ASGI application")


def configure_logging(level: str = "INFO", *, redact: Redactor = redact_pii) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redaction_processor(redact),
    ]
    structlog.configure(
        # filter_by_level first: a line below LOG_LEVEL is dropped before the chain (time
        # stamp, PII redaction) runs; without it every request paid ~90 us for the request
        # line even at WARNING (the benchmark's HTTP-path table).
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn installs its own handlers; route them through ours. Its access log is replaced
    # by the request log line, which carries the request id, principal and latency.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The app's 500 handler has logged the error (once, redacted); Starlette re-raises it and
    # uvicorn would log the same traceback again.
    logging.getLogger("uvicorn.error").addFilter(_not_the_apps_error)
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
    # httpx logs every request's full URL at INFO and httpcore its traffic at DEBUG: a webhook
    # URL's query string often carries the receiver's token (runs/webhooks.py logs it without).
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Python warnings (pydantic's carry the offending input) become log records too: JSON,
    # redacted, never plain text on stderr.
    logging.captureWarnings(True)
