"""The run request of the LangGraph Server API subset (`RunCreate` and its `command`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from agent_service.core.request_body import Body

# A thread id, wherever it comes from (a body, or a path with if_not_exists=create).
MAX_THREAD_ID = 200
# Targets of one command.goto: each `Send` is a task of the next step, and LangGraph's work per
# step grows faster than linearly with them (400 held the event loop for minutes, past the
# request timeout). A graph's own fan-out is bounded by its options (RESEARCH_MAX_TASKS).
MAX_GOTO = 32
# How far ahead a delayed run may be scheduled (a cron covers longer horizons): 30 days.
MAX_AFTER_SECONDS = 30 * 24 * 3600

StreamModeName = Literal[
    "values",
    "updates",
    "messages",
    "messages-tuple",
    "custom",
    "debug",
    "tasks",
    "checkpoints",
    "events",
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
    # A field this model does not know answers 422 naming it, never silently dropped: a run
    # that ignored part of its request would do something else than asked.
    model_config = ConfigDict(extra="forbid")

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
    # LangGraph's double-texting strategies; a principal only ever reaches its own threads,
    # so "interrupt" and "rollback" cancel only the caller's own runs.
    multitask_strategy: Literal["reject", "enqueue", "interrupt", "rollback"] = "reject"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_completion: Literal["delete", "keep"] = "delete"
    on_disconnect: Literal["cancel", "continue"] | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    # Background runs only (runs.create): start no sooner than this.
    after_seconds: float | None = Field(default=None, ge=0, le=MAX_AFTER_SECONDS)
    # POSTed the run when it ends (`runs.webhooks`: allow-listed hosts, signed, retried).
    webhook: str | None = Field(default=None, min_length=1, max_length=2048)
    # Background runs only: keep every event for runs.join_stream to replay (Last-Event-ID).
    stream_resumable: bool = False
    # Declared so that their unset form (the SDK sends `stream_resumable: false`) is accepted;
    # a set value is refused by `_unsupported` below.
    feedback_keys: list[str] | None = None
    strict_resume: bool | None = None
    checkpoint_during: bool | None = None
    langsmith_tracer: dict[str, Any] | None = None
    # Not implemented here: refused with a 422 naming the field rather than ignored.
    _unsupported = (
        "feedback_keys",
        "strict_resume",
        "checkpoint_during",
        "langsmith_tracer",
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
