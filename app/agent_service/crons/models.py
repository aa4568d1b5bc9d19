"""Request bodies of the cron routes, as langgraph-sdk's CronClient sends them, and the run
payload a cron stores (the fields of a run's body it fires with)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, StrictBool, field_validator

from agent_service.core.request_body import Body
from agent_service.persistence.cron_tables import CronSortBy
from agent_service.runs.models import StreamModeName

MAX_LIMIT = 1000
MAX_OFFSET = 2**31 - 1
CronField = Literal[
    "cron_id",
    "assistant_id",
    "thread_id",
    "end_time",
    "schedule",
    "timezone",
    "created_at",
    "updated_at",
    "user_id",
    "payload",
    "next_run_date",
    "metadata",
    "now",
    "on_run_completed",
    "enabled",
]
# The run fields a cron keeps in its payload and fires with (RunCreate's names).
RUN_FIELDS = (
    "input",
    "config",
    "context",
    "interrupt_before",
    "interrupt_after",
    "webhook",
    "multitask_strategy",
    "stream_mode",
    "stream_subgraphs",
    "durability",
)


def _aware(value: datetime | None) -> datetime | None:
    # The SDK sends `end_time.isoformat()`: naive when the caller's datetime was naive. LangGraph
    # reads schedules in UTC, so a naive time is UTC too.
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:59:59-14:00 is past the last datetime in UTC: an OverflowError, which
        # pydantic does not turn into a 422 (it was a 500).
        raise ValueError("is outside the years 1-9999 in UTC") from None


class _CronBody(Body):
    # A field this model does not know answers 422 naming it (as a run's body does): a cron
    # that ignored part of its request would fire something else than asked.
    model_config = ConfigDict(extra="forbid")


class _RunFields(_CronBody):
    input: dict[str, Any] | list[Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    webhook: str | None = Field(default=None, min_length=1, max_length=2048)
    stream_mode: StreamModeName | list[StreamModeName] | None = None
    stream_subgraphs: StrictBool | None = None
    durability: Literal["sync", "async", "exit"] | None = None

    def run_fields(self) -> dict[str, Any]:
        """The run fields this body sets (None: not given)."""
        return {
            name: getattr(self, name)
            for name in RUN_FIELDS
            if name in type(self).model_fields and getattr(self, name) is not None
        }


class ThreadCronCreate(_RunFields):
    assistant_id: str = Field(min_length=1, max_length=200)
    schedule: str = Field(min_length=1, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)
    end_time: datetime | None = None
    enabled: StrictBool = True
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    # A thread's run may meet another run on the thread: enqueue it behind (the other
    # strategies would cancel a client's run for a scheduled one).
    multitask_strategy: Literal["reject", "enqueue"] = "enqueue"
    # Declared so that their unset form is accepted; a set value is refused (`_unsupported`).
    stream_resumable: StrictBool | None = None
    checkpoint_during: StrictBool | None = None
    on_run_completed: Literal["delete", "keep"] | None = None
    # Resumable streams of fired runs and the deprecated `checkpoint_during`: not offered; a
    # thread's cron runs on its thread, which stays.
    _unsupported: ClassVar[tuple[str, ...]] = (
        "stream_resumable",
        "checkpoint_during",
        "on_run_completed",
    )

    @field_validator("end_time")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _aware(value)


class CronCreate(ThreadCronCreate):
    # Each firing of a stateless cron runs on a new thread: deleted after the run, or kept.
    on_run_completed: Literal["delete", "keep"] | None = "delete"
    _unsupported: ClassVar[tuple[str, ...]] = ("stream_resumable", "checkpoint_during")


class CronUpdate(_RunFields):
    schedule: str | None = Field(default=None, min_length=1, max_length=200)
    # Sent as null to clear the end time; absent leaves it (model_fields_set tells them apart).
    end_time: datetime | None = None
    metadata: dict[str, Any] | None = None
    on_run_completed: Literal["delete", "keep"] | None = None
    enabled: StrictBool | None = None
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    stream_resumable: StrictBool | None = None
    _unsupported = ("stream_resumable",)

    @field_validator("end_time")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _aware(value)


class CronSearch(_CronBody):
    assistant_id: str | None = Field(default=None, max_length=200)
    thread_id: str | None = Field(default=None, max_length=200)
    enabled: StrictBool | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT, strict=True)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET, strict=True)
    sort_by: CronSortBy = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[CronField] | None = Field(default=None, max_length=20)


class CronCount(_CronBody):
    assistant_id: str | None = Field(default=None, max_length=200)
    thread_id: str | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)
