"""The settings the DR commands run with; invalid ones become one DrError naming the keys."""

from __future__ import annotations

from pydantic import ValidationError

from agent_service.dr.errors import DrError
from agent_service.settings import Settings, load_settings


def dr_settings() -> Settings:
    try:
        return load_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']).upper() or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
        raise DrError(f"invalid settings: {problems}", retryable=False) from None
