"""API key authentication and log redaction, as units."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest
import structlog
from agent_service.auth.api_keys import ApiKeyAuthenticator
from agent_service.guardrails import redact
from agent_service.server.logging_setup import configure_logging
from pydantic import SecretStr


def test_authenticate_maps_keys_to_principals() -> None:
    auth = ApiKeyAuthenticator(
        {"alice": SecretStr("alice-key-0123456789"), "bob": SecretStr("bob-key-0123456789ab")}
    )
    assert auth.authenticate("alice-key-0123456789") == "alice"
    assert auth.authenticate("bob-key-0123456789ab") == "bob"
    assert auth.authenticate("alice-key-012345678") is None
    assert auth.authenticate("") is None
    assert auth.authenticate(None) is None
    assert not ApiKeyAuthenticator({}).configured
    assert ApiKeyAuthenticator({}).authenticate("anything-at-all-00") is None


def test_log_redaction_is_the_guardrails_one() -> None:
    text = "mail a.b@example.org, card 4111-1111-1111-1111, ssn 123-45-6789, order 42"
    assert redact(text) == (
        "mail [REDACTED_EMAIL], card [REDACTED_CARD], ssn [REDACTED_SSN], order 42"
    )


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("INFO")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    original = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(original)
        configure_logging("WARNING")


def test_log_lines_are_json_redacted_and_drop_secret_fields(captured_logs: io.StringIO) -> None:
    structlog.get_logger("t").info(
        "user said", text="reach me at jane@example.com", api_key="k-123", nested={"password": "p"}
    )
    logging.getLogger("library").warning("stdlib says jane@example.com")
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    ours, theirs = lines
    assert ours["text"] == "reach me at [REDACTED_EMAIL]"
    assert "api_key" not in ours
    assert ours["nested"] == {}
    assert ours["level"] == "info"
    assert theirs["event"] == "stdlib says [REDACTED_EMAIL]"


def test_python_warnings_are_json_log_lines_and_redacted() -> None:
    # A process of its own: pytest records warnings itself, which would hide the path.
    code = (
        "import warnings\n"
        "from agent_service.server.logging_setup import configure_logging\n"
        "configure_logging('INFO')\n"
        "warnings.warn(\"input_value={'card': '4111 1111 1111 1111'}\", UserWarning)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stderr == ""
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 1
    assert "[REDACTED_CARD]" in lines[0]["event"]
    assert "4111" not in done.stdout


def test_an_unhandled_error_is_logged_once(captured_logs: io.StringIO) -> None:
    # Starlette re-raises after the app's 500 handler logged the error; uvicorn would log
    # the same traceback a second time.
    logging.getLogger("uvicorn.error").error("Exception in ASGI application\n")
    logging.getLogger("uvicorn.error").error("something else")
    lines = [json.loads(line)["event"] for line in captured_logs.getvalue().splitlines()]
    assert lines == ["something else"]
