"""Why a run could not start. Each message is the sentence the client reads; the API's one
table (`api.errors.RUN_ERRORS`) gives each type its HTTP status and error code."""

from __future__ import annotations


class RunError(Exception):
    pass


class AssistantNotFound(RunError):
    def __init__(self, assistant_id: str) -> None:
        super().__init__(f"assistant {assistant_id!r} not found")


class ThreadNotFound(RunError):
    # The same answer whether the thread does not exist or belongs to another principal.
    def __init__(self, thread_id: str) -> None:
        super().__init__(f"thread {thread_id!r} not found")


class ThreadIdUnavailable(RunError):
    """The id is another principal's thread. Thread ids are one namespace for every principal,
    so the answer cannot be "created"; it says no more than that the id cannot be used."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(
            f"thread id {thread_id!r} cannot be used; choose another (a random UUID), or "
            "omit thread_id to get one"
        )


class InvalidRunConfig(RunError):
    pass


class GraphMismatch(RunError):
    pass


class ThreadBusy(RunError):
    """multitask_strategy="reject" and another run holds the thread."""


class ApprovalPending(RunError):
    """New input on a thread that waits for an approval: it would replace the request the
    approver is reading, and the approver's "approve" would then approve the new one."""


class ThreadStayedBusy(RunError):
    """multitask_strategy="enqueue" and the thread stayed busy for the whole request timeout."""


class TooManyRuns(RunError):
    """The principal already has MAX_ACTIVE_RUNS_PER_PRINCIPAL background runs that have not
    ended: the queue is shared, and one principal's flood would starve everyone behind it."""
