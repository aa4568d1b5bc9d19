"""The base of every request body, as langgraph-sdk sends them.

Unknown fields are ignored (newer clients send more); fields whose meaning this service does
not implement are refused with 422 naming the field rather than silently dropped.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")
    # Fields the SDK may send whose meaning this service does not implement.
    _unsupported: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in cls._unsupported:
                if data.get(name) is not None:
                    raise ValueError(f"{name!r} is not supported by this server")
        return data
