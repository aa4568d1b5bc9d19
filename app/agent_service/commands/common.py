"""What every command shares: loading the settings, and the one sentence that names each
invalid setting by its environment name."""

from __future__ import annotations

from pydantic import ValidationError

from agent_service.settings import Settings, load_settings


class InvalidSettings(Exception):
    """The settings do not validate; the message names every bad key and what is wrong."""


def describe_invalid_settings(exc: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']).upper() or 'settings'}: {error['msg']}"
        for error in exc.errors()
    )
    return f"invalid settings: {problems}"


def command_settings() -> Settings:
    try:
        return load_settings()
    except ValidationError as exc:
        raise InvalidSettings(describe_invalid_settings(exc)) from None
