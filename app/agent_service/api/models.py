"""Request bodies of the LangGraph Server API subset, as langgraph-sdk sends them.

Unknown fields are ignored (newer clients send more); fields whose meaning this service does
not implement are refused with 422 naming the field rather than silently dropped.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

StreamModeName = Literal[
    "values", "updates", "messages", "messages-tuple", "custom", "debug", "tasks", "checkpoints"
]
ThreadStatusName = Literal["idle", "busy", "interrupted", "error"]
MAX_LIMIT = 1000


class _Body(BaseModel):
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


class SendModel(_Body):
    node: str
    input: dict[str, Any] | None = None


class CommandModel(_Body):
    resume: Any = None
    update: dict[str, Any] | list[tuple[str, Any]] | None = None
    goto: SendModel | str | list[SendModel | str] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> CommandModel:
        if self.resume is None and self.update is None and self.goto is None:
            raise ValueError("command needs at least one of resume, update or goto")
        return self


class RunCreate(_Body):
    assistant_id: str = Field(min_length=1, max_length=200)
    input: dict[str, Any] | list[Any] | None = None
    command: CommandModel | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream_mode: StreamModeName | list[StreamModeName] = "values"
    stream_subgraphs: bool = False
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    checkpoint_id: str | None = None
    checkpoint: dict[str, Any] | None = None
    # Only these two: "interrupt" and "rollback" would cancel another client's run.
    multitask_strategy: Literal["reject", "enqueue"] = "reject"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_completion: Literal["delete", "keep"] = "delete"
    on_disconnect: Literal["cancel", "continue"] | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    _unsupported = ("webhook", "after_seconds")

    @model_validator(mode="after")
    def _input_or_command(self) -> RunCreate:
        if self.input is not None and self.command is not None:
            raise ValueError("give either input or command, not both")
        return self

    @property
    def stream_modes(self) -> list[StreamModeName]:
        modes = [self.stream_mode] if isinstance(self.stream_mode, str) else self.stream_mode
        return list(dict.fromkeys(modes)) or ["values"]


class ThreadCreate(_Body):
    thread_id: str | None = Field(default=None, min_length=1, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"


class ThreadSearch(_Body):
    metadata: dict[str, Any] = Field(default_factory=dict)
    ids: list[str] | None = None
    status: ThreadStatusName | None = None
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    # Filtering on state values would load every thread's state: not offered.
    _unsupported = ("values", "extract")


class HistoryRequest(_Body):
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT)
    before: str | dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None


class AssistantSearch(_Body):
    metadata: dict[str, Any] = Field(default_factory=dict)
    graph_id: str | None = None
    name: str | None = None
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0)


class InvokeRequest(_Body):
    input: dict[str, Any]
    thread_id: str | None = Field(default=None, min_length=1, max_length=200)
    assistant_id: str = Field(default="main_agent", min_length=1, max_length=200)
    config: dict[str, Any] | None = None
