"""The run request of the LangGraph Server API subset (`RunCreate` and its `command`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from agent_service.core.request_body import Body

# A thread id, wherever it comes from (a body, or a path with if_not_exists=create).
MAX_THREAD_ID = 200
# Targets of one command.goto: each `Send` is a task of the next step, and LangGraph's work per
# step grows faster than linearly with them (400 held the event loop for minutes, past the
# request timeout). A graph's own fan-out is bounded by its options (RESEARCH_MAX_TASKS).
MAX_GOTO = 32

StreamModeName = Literal[
    "values", "updates", "messages", "messages-tuple", "custom", "debug", "tasks", "checkpoints"
]


class SendModel(Body):
    node: str
    input: dict[str, Any] | None = None


class CommandModel(Body):
    resume: Any = None
    update: dict[str, Any] | list[tuple[str, Any]] | None = None
    goto: SendModel | str | Annotated[list[SendModel | str], Field(max_length=MAX_GOTO)] | None = (
        None
    )

    @model_validator(mode="after")
    def _not_empty(self) -> CommandModel:
        if self.resume is None and self.update is None and self.goto is None:
            raise ValueError("command needs at least one of resume, update or goto")
        return self


class RunCreate(Body):
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
    # Not implemented here: refused with a 422 naming the field rather than ignored.
    _unsupported = (
        "webhook",
        "after_seconds",
        "stream_resumable",
        "feedback_keys",
        "strict_resume",
    )

    @model_validator(mode="after")
    def _input_or_command(self) -> RunCreate:
        if self.input is not None and self.command is not None:
            raise ValueError("give either input or command, not both")
        return self

    @property
    def stream_modes(self) -> list[StreamModeName]:
        modes = [self.stream_mode] if isinstance(self.stream_mode, str) else self.stream_mode
        return list(dict.fromkeys(modes)) or ["values"]
