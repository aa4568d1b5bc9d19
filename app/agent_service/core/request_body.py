"""The base of every request body, as langgraph-sdk sends them.

Unknown fields are ignored (newer clients send more); fields whose meaning this service does
not implement are refused with 422 naming the field rather than silently dropped.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from agent_service.core.json_limits import json_problem


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")
    # Fields the SDK may send whose meaning this service does not implement.
    _unsupported: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        problem = json_problem(data, "body")
        if problem is not None:
            # The message names the field; the value is never echoed (it may hold PII).
            raise ValueError(problem)
        if isinstance(data, dict):
            for name in cls._unsupported:
                # The SDK sends some of these as `false` by default: only a set value is refused.
                if data.get(name) not in (None, False):
                    raise ValueError(f"{name!r} is not supported by this server")
        return data
