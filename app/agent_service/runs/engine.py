"""Runs: claim the thread, execute the graph in a task of its own, record the outcome.

The graph runs in a producer task that feeds a queue; the HTTP handler only reads the queue.
So the request timeout (REQUEST_TIMEOUT_SECONDS) cancels exactly the graph, never the
response being written, and whatever step the graph last checkpointed stays resumable: a
later run on the thread with no input (or a `command`) continues from there.

A thread runs one run at a time across every replica: a lease row in `agent_threads` is
claimed with one conditional UPDATE. `multitask_strategy="reject"` raises `ThreadBusy` when
the lease is taken; `"enqueue"` waits for it (up to the request timeout). A crashed holder's
lease expires within LEASE_SECONDS.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
import structlog
from langchain_core.messages import convert_to_messages
from langchain_core.runnables import RunnableConfig
from langgraph.errors import EmptyInputError, GraphRecursionError, InvalidUpdateError
from langgraph.types import Command, Send
from opentelemetry import trace

from agent_service.auth.access import AccessPolicy, Forbidden
from agent_service.core.request_context import annotate
from agent_service.core.serialization import to_jsonable
from agent_service.graphs.assistants import AssistantCatalog
from agent_service.graphs.source import Graph, Graphs
from agent_service.metrics import ACTIVE_RUNS, GRAPH_EXECUTIONS, RUN_DURATION
from agent_service.persistence.backends import Persistence
from agent_service.persistence.records import (
    RunRecord,
    RunStatus,
    ThreadExistsError,
    ThreadStatus,
)
from agent_service.persistence.run_queue import CancelAction, QueuedRun
from agent_service.runs.errors import (
    ApprovalPending,
    AssistantNotFound,
    GraphMismatch,
    InvalidRunConfig,
    ThreadBusy,
    ThreadIdUnavailable,
    ThreadNotFound,
    ThreadStayedBusy,
    TooManyRuns,
)
from agent_service.runs.models import MAX_THREAD_ID, CommandModel, RunCreate, SendModel
from agent_service.runs.stream_events import EventTranslator, langgraph_modes
from agent_service.runs.tracker import CANCEL_MESSAGES, SUPERSEDED, RunTracker
from agent_service.runs.webhooks import WebhookRejected, check_webhook_url, deliver_run_webhook
from agent_service.settings import Settings

log = structlog.get_logger(__name__)
tracer = trace.get_tracer("agent_service.runs")

# Who approved a resumed run, in its metadata: written by the service only.
APPROVED_BY = "approved_by"

DEFAULT_RECURSION_LIMIT = 25
MAX_RECURSION_LIMIT = 1000
# A run holds its thread with a short lease that it renews while it lives: a run whose process
# died frees the thread within LEASE_SECONDS, and a live run never loses it.
LEASE_SECONDS = 15.0
LEASE_RENEW_SECONDS = 5.0
RELEASE_RETRY_SECONDS = 0.5
# Keys the server owns in `configurable`: a client must not pick another thread or user.
_RESERVED_CONFIGURABLE = frozenset(
    {"thread_id", "user_id", "checkpoint_ns", "checkpoint_map", "checkpoint_id"}
)

Outcome = Literal["success", "interrupted", "timeout", "error", "cancelled"]
OUTCOMES: tuple[Outcome, ...] = ("success", "interrupted", "timeout", "error", "cancelled")


def initialise_run_series(graph_ids: Iterable[str]) -> None:
    """Create every graph's run series at 0. A counter series that first appears at 6 loses
    those 6 to rate() (no earlier sample), so the first errors after a start would never reach
    the error-ratio alert or the canary's check."""
    for graph_id in graph_ids:
        for outcome in OUTCOMES:
            GRAPH_EXECUTIONS.labels(graph=graph_id, status=outcome)
        RUN_DURATION.labels(graph=graph_id)
        ACTIVE_RUNS.labels(graph=graph_id)


@dataclass
class Finished:
    outcome: Outcome
    error: BaseException | None = None


@dataclass
class PreparedRun:
    run_id: str
    thread_id: str
    graph_id: str
    assistant_id: str
    principal: str
    stateless: bool
    body: RunCreate
    graph: Graph
    graph_input: Any
    config: RunnableConfig
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Executed by a queue worker: its output is stored for `join`, and a shutdown puts it back
    # in the queue rather than ending it.
    background: bool = False
    # A background run's claim number (`agent_run_queue.attempts`): its lease is renewed only
    # while no later claim superseded this execution.
    claim: int | None = None

    @property
    def location(self) -> str:
        # Stateless runs too: their thread exists while they run (and after, when kept), and
        # this is the route that answers for a run. langgraph-sdk reads both ids from it.
        return f"/threads/{self.thread_id}/runs/{self.run_id}"


@dataclass
class RunningRun:
    prepared: PreparedRun
    translator: EventTranslator
    queue: asyncio.Queue[tuple[str, Any] | Finished]
    task: asyncio.Task[None] | None = None

    async def events(self) -> AsyncIterator[tuple[str, Any] | Finished]:
        while True:
            item = await self.queue.get()
            yield item
            if isinstance(item, Finished):
                return


def _command(model: CommandModel) -> Command[Any]:
    def goto_target(target: SendModel | str) -> Send | str:
        return target if isinstance(target, str) else Send(target.node, target.input)

    kwargs: dict[str, Any] = {}
    if model.resume is not None:
        kwargs["resume"] = model.resume
    if model.update is not None:
        kwargs["update"] = model.update
    if model.goto is not None:
        kwargs["goto"] = (
            [goto_target(t) for t in model.goto]
            if isinstance(model.goto, list)
            else goto_target(model.goto)
        )
    return Command(**kwargs)


def _recursion_limit(user_config: dict[str, Any]) -> int:
    value = user_config.get("recursion_limit", DEFAULT_RECURSION_LIMIT)
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not 1 <= value <= MAX_RECURSION_LIMIT
    ):
        raise InvalidRunConfig(
            f"config.recursion_limit must be an integer from 1 to {MAX_RECURSION_LIMIT}"
        )
    return value


def build_config(
    body: RunCreate, *, thread_id: str, principal: str, run_id: str, graph_id: str
) -> RunnableConfig:
    user_config = dict(body.config or {})
    user_configurable = user_config.get("configurable") or {}
    if not isinstance(user_configurable, dict):
        raise InvalidRunConfig("config.configurable must be an object")
    configurable = {
        key: value
        for key, value in user_configurable.items()
        if key not in _RESERVED_CONFIGURABLE and not key.startswith("__")
    }
    configurable["thread_id"] = thread_id
    # The graphs read the principal from here (per-user memory, per-user model-call limits).
    configurable["user_id"] = principal
    checkpoint_id = body.checkpoint_id or (body.checkpoint or {}).get("checkpoint_id")
    if checkpoint_id:
        configurable["checkpoint_id"] = str(checkpoint_id)
    tags = user_config.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidRunConfig("config.tags must be a list of strings")
    return {
        "configurable": configurable,
        "recursion_limit": _recursion_limit(user_config),
        "run_id": uuid.UUID(run_id),
        "tags": tags,
        "metadata": {
            **(body.metadata or {}),
            "run_id": run_id,
            "thread_id": thread_id,
            "graph_id": graph_id,
            "user_id": principal,
        },
    }


# Failures whose message is about the request, not the service's insides: told as they are.
_TOLD_AS_IS = (GraphRecursionError, InvalidUpdateError, EmptyInputError)


def run_error_type(error: BaseException | None) -> str:
    return "Exception" if error is None else type(error).__name__


def run_failure_message(error: BaseException | None) -> str:
    """What the client (and the run's record) reads about a failed run: never an exception's
    text that could carry internals (SQL, paths, someone's data); the log has the rest."""
    if isinstance(error, _TOLD_AS_IS):
        return f"the run failed: {_first_line(error)}"
    return f"the run failed ({run_error_type(error)}); the service log has the details"


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


# A run's outcome -> (the run's status, the thread's status after it).
_RUN_STATUS: dict[Outcome, tuple[RunStatus, ThreadStatus]] = {
    "success": ("success", "idle"),
    "interrupted": ("success", "interrupted"),
    "timeout": ("timeout", "idle"),
    "cancelled": ("interrupted", "idle"),
    "error": ("error", "error"),
}
# Deliveries and delayed deletions in flight (a task nobody references may be collected
# before it ends).
_DETACHED_TASKS: set[asyncio.Task[bool]] = set()
# How long a finished stateless background run (on_completion "delete") stays joinable.
STATELESS_JOIN_SECONDS = 60.0


async def _graph_chunks(
    running: RunningRun, kwargs: dict[str, Any]
) -> AsyncIterator[tuple[Sequence[str], str, Any]]:
    """The graph's (namespace, mode, chunk) stream. With the `events` mode requested, through
    `astream_events` (v2): each event goes to the client as an `events` event, except the
    graph's own `on_chain_stream` events, which carry the other modes' chunks."""
    prepared = running.prepared
    if "events" not in running.translator.requested:
        async for item in prepared.graph.astream(prepared.graph_input, prepared.config, **kwargs):
            yield item
        return
    root = str(prepared.config.get("run_id"))
    async for event in prepared.graph.astream_events(
        prepared.graph_input, prepared.config, version="v2", **kwargs
    ):
        if event["event"] == "on_chain_stream" and event["run_id"] == root:
            yield event["data"]["chunk"]
        else:
            running.queue.put_nowait(("events", to_jsonable(event)))


def _claim_checks_thread(body: RunCreate) -> bool:
    """Whether an inline run's thread (the principal's, of the run's graph) is checked by the
    claim itself (`start_run`), sparing a read: not when a missing thread is to be created, nor
    when the strategy cancels the thread's runs before the claim (interrupt, rollback), which
    must know first that the thread is the principal's."""
    return body.multitask_strategy in ("reject", "enqueue") and body.if_not_exists != "create"


def _graph_mismatch(
    thread_id: str, thread_graph_id: str, assistant_id: str, graph_id: str
) -> GraphMismatch:
    return GraphMismatch(
        f"thread {thread_id!r} belongs to graph {thread_graph_id!r}; "
        f"assistant {assistant_id!r} runs graph {graph_id!r}"
    )


def _busy_message(thread_id: str) -> str:
    return (
        f"thread {thread_id!r} already has a run in progress; retry when it ends, or send "
        "multitask_strategy 'enqueue' (run after it), 'interrupt' or 'rollback' (cancel it)"
    )


def cancel_action(finished: Finished) -> CancelAction | None:
    """The client's cancel that ended the run, if one did (the cancel's message says which)."""
    if finished.outcome != "cancelled" or finished.error is None:
        return None
    for action, message in CANCEL_MESSAGES.items():
        if message in finished.error.args:
            return "rollback" if action == "rollback" else "interrupt"
    return None


def _check_nodes(graph: Graph, field_name: str, names: list[str]) -> None:
    unknown = sorted(set(names) - set(graph.nodes) - {"__end__"})
    if unknown:
        raise InvalidRunConfig(
            f"{field_name}: no node named {unknown} in graph {graph.name!r}; "
            f"its nodes are {sorted(n for n in graph.nodes if not n.startswith('__'))}"
        )


def check_request(graph: Graph, body: RunCreate) -> None:
    """422 before the run for what the graph would only fail on (a 500 before) or silently
    ignore: node names that do not exist, channels it lacks, messages it cannot read."""
    for field_name in ("interrupt_before", "interrupt_after"):
        value = getattr(body, field_name)
        if isinstance(value, list):
            _check_nodes(graph, field_name, value)
    if isinstance(body.input, list):
        raise InvalidRunConfig(f"input: graph {graph.name!r} takes an object, not a list")
    if isinstance(body.input, dict) and "messages" in body.input:
        messages = body.input["messages"]
        try:
            convert_to_messages(messages if isinstance(messages, list) else [messages])
        except Exception as exc:
            raise InvalidRunConfig(f"input.messages: {_first_line(exc)}") from None
    command = body.command
    if command is None:
        return
    if command.goto is not None:
        targets = command.goto if isinstance(command.goto, list) else [command.goto]
        _check_nodes(
            graph,
            "command.goto",
            [target if isinstance(target, str) else target.node for target in targets],
        )
    if command.update is not None:
        keys = (
            list(command.update)
            if isinstance(command.update, dict)
            else [key for key, _ in command.update]
        )
        channels = {name for name in graph.channels if not name.startswith("__")}
        unknown = sorted(set(keys) - channels)
        if unknown:
            raise InvalidRunConfig(
                f"command.update: graph {graph.name!r} has no channel {unknown}; "
                f"its channels are {sorted(channels)}"
            )


class RunEngine:
    def __init__(
        self,
        *,
        persistence: Persistence,
        graphs: Graphs,
        catalog: AssistantCatalog,
        tracker: RunTracker,
        access: AccessPolicy,
        timeout_seconds: float,
        background_timeout_seconds: float | None = None,
        lease_seconds: float | None = None,
        settings: Settings | None = None,
    ) -> None:
        self._access = access
        self._persistence = persistence
        self._tables = persistence.tables
        self._graphs = graphs
        self._catalog = catalog
        self._tracker = tracker
        self.timeout_seconds = timeout_seconds
        self.background_timeout_seconds = background_timeout_seconds or timeout_seconds
        # Read here, not at import: tests shorten the module's defaults.
        self.lease_seconds = lease_seconds if lease_seconds is not None else LEASE_SECONDS
        self.renew_seconds = min(LEASE_RENEW_SECONDS, self.lease_seconds / 3)
        self._queue = persistence.queue
        # The webhook rules (WEBHOOK_*); without settings every `webhook` is refused.
        self._settings = settings
        self._pending_releases: set[asyncio.Task[None]] = set()

    # ----- preparing ---------------------------------------------------------------------

    async def _acting_for(
        self, principal: str, thread_id: str | None, graph_id: str, body: RunCreate
    ) -> tuple[str, dict[str, Any]]:
        """Who the run acts for (the thread's owner) and metadata it adds, after the access
        rules: on a graph with approval steps a client may only `resume`, and only an
        approver may resume; an approver may resume another principal's thread that waits."""
        access = self._access
        access.require_graph(principal, graph_id)
        command = body.command
        if graph_id in access.approval_graphs and (
            body.checkpoint_id or (body.checkpoint or {}).get("checkpoint_id")
        ):
            # Replaying a checkpoint taken after an approval runs the approved tool call
            # again, with nobody's approval: such a graph only continues from its latest state.
            raise Forbidden(
                f"graph {graph_id!r} has approval steps: a run continues from the thread's "
                "latest checkpoint; checkpoint_id and checkpoint are refused"
            )
        if graph_id not in access.approval_graphs or command is None:
            access.require(principal, "user", action=f"running graph {graph_id!r}")
            if graph_id in access.approval_graphs and thread_id is not None:
                await self._refuse_input_while_waiting(principal, thread_id, body)
            return principal, {}
        if command.goto is not None or command.update is not None:
            raise Forbidden(
                f"graph {graph_id!r} has approval steps: a command may only resume "
                "(command.resume); command.goto and command.update are refused"
            )
        access.require(principal, "approver", action=f"resuming an approval on {graph_id!r}")
        owner = None if thread_id is None else await self._tables.thread_owner(thread_id)
        if thread_id is None or owner is None or owner == principal:
            # Not someone else's request: a run of the principal's own, which needs `user`
            # too (an approver-only principal ran graphs through a stateless resume).
            access.require(principal, "user", action=f"running graph {graph_id!r}")
            return principal, {}
        waiting = await self._tables.get_thread(thread_id, owner)
        if waiting is None or waiting.status != "interrupted":
            # Another principal's thread is only reachable while it waits for an approval.
            raise ThreadNotFound(thread_id)
        return owner, {APPROVED_BY: principal}

    async def _refuse_input_while_waiting(
        self, principal: str, thread_id: str, body: RunCreate
    ) -> None:
        if body.input is None:
            # No new input re-runs the waiting step, which asks for the approval again.
            return
        thread = await self._tables.get_thread(thread_id, principal)
        if thread is not None and thread.status == "interrupted":
            raise ApprovalPending(
                f"thread {thread_id!r} waits for an approval: an approver decides first "
                "(new input would replace the request they are reading); or delete the thread"
            )

    async def prepare(self, principal: str, thread_id: str | None, body: RunCreate) -> PreparedRun:
        """Admit an inline run (wait, stream): checked, its thread claimed, its record written."""
        prepared = await self._admit(
            principal, thread_id, body, thread_checked_by_claim=_claim_checks_thread(body)
        )
        thread_id, run_id = prepared.thread_id, prepared.run_id
        principal = prepared.principal
        now = datetime.now(UTC)
        record = RunRecord(
            run_id=run_id,
            thread_id=thread_id,
            owner=principal,
            assistant_id=body.assistant_id,
            graph_id=prepared.graph_id,
            status="running",
            metadata=prepared.body.metadata or {},
            multitask_strategy=body.multitask_strategy,
            error=None,
            created_at=now,
            updated_at=now,
        )
        # The lease, the thread's graph and the run's row in one transaction (start_run).
        await self._claim(record, thread_id, body.multitask_strategy)
        return prepared

    async def submit(
        self, principal: str, thread_id: str | None, body: RunCreate, *, delay_seconds: float
    ) -> RunRecord:
        """Admit a background run: checked like an inline run, then stored `pending` for a
        worker (`runs.queue`). The multitask strategy applies now, against the thread's runs
        that have not ended."""
        await self._within_quota(principal)
        prepared = await self._admit(principal, thread_id, body)
        if not prepared.stateless:
            active = await self._queue.active_run_ids(prepared.thread_id)
            if active and body.multitask_strategy == "reject":
                raise ThreadBusy(_busy_message(prepared.thread_id))
            if active and body.multitask_strategy in ("interrupt", "rollback"):
                await self.cancel_runs(active, body.multitask_strategy)
        await self._tables.set_thread_graph(
            prepared.thread_id, prepared.principal, prepared.graph_id
        )
        now = datetime.now(UTC)
        record = RunRecord(
            run_id=prepared.run_id,
            thread_id=prepared.thread_id,
            owner=prepared.principal,
            assistant_id=body.assistant_id,
            graph_id=prepared.graph_id,
            status="pending",
            metadata=prepared.body.metadata or {},
            multitask_strategy=body.multitask_strategy,
            error=None,
            created_at=now,
            updated_at=now,
        )
        kwargs = prepared.body.model_dump(mode="json", exclude_none=True, exclude={"after_seconds"})
        await self._queue.enqueue(
            record, kwargs, stateless=prepared.stateless, delay_seconds=delay_seconds
        )
        return record

    async def _within_quota(self, principal: str) -> None:
        """Refuse a background run past the principal's bound. Workers claim the oldest run
        first, across principals: without a bound, one principal's batches (100 runs a request)
        would put every other principal's run behind thousands of its own. Checked before the
        run is stored, so concurrent submits may pass it by a few; it bounds a flood, not a
        count to the unit."""
        if self._settings is None:
            return
        limit = self._settings.max_active_runs_per_principal
        if await self._queue.owner_active_count(principal) >= limit:
            raise TooManyRuns(
                f"you have {limit} background runs that have not ended "
                "(MAX_ACTIVE_RUNS_PER_PRINCIPAL); join or cancel some before creating more"
            )

    async def cancel_runs(self, run_ids: list[str], action: CancelAction) -> None:
        """Cancel these runs wherever they are: a pending one ends here; one this process
        executes is cancelled now; another process's hears it from `agent_run_cancels`."""
        ended = set(await self._queue.cancel_pending(run_ids, delete=action == "rollback"))
        for run_id in run_ids:
            if run_id in ended:
                continue
            if self._tracker.cancel_run(run_id, action) is None:
                await self._queue.request_cancel(run_id, action)

    async def resume_queued(self, queued: QueuedRun) -> PreparedRun:
        """A claimed run, ready to execute. A run claimed again (its worker died) continues
        from the last checkpoint it wrote rather than starting over with its input."""
        run = queued.run
        assert run.thread_id is not None
        # Admission checked PRINCIPAL_GRAPHS when the run was queued, perhaps under another
        # deploy's list (a delayed run waits for hours): a graph taken from its principal
        # since then fails the run here (Forbidden) instead of running it.
        self._access.require_graph(run.owner, run.graph_id)
        body = RunCreate.model_validate(queued.kwargs)
        graph = self._graphs[run.graph_id]
        config = build_config(
            body,
            thread_id=run.thread_id,
            principal=run.owner,
            run_id=run.run_id,
            graph_id=run.graph_id,
        )
        graph_input = _command(body.command) if body.command is not None else body.input
        if queued.attempts > 1 and await self._has_checkpoint_of(run.thread_id, run.run_id):
            graph_input = None
            config["configurable"].pop("checkpoint_id", None)
        annotate(thread_id=run.thread_id, graph=run.graph_id, run_id=run.run_id)
        return PreparedRun(
            run_id=run.run_id,
            thread_id=run.thread_id,
            graph_id=run.graph_id,
            assistant_id=run.assistant_id,
            principal=run.owner,
            stateless=queued.stateless,
            body=body,
            graph=graph,
            graph_input=graph_input,
            config=config,
            created_at=run.created_at,
            background=True,
            claim=queued.attempts,
        )

    async def _has_checkpoint_of(self, thread_id: str, run_id: str) -> bool:
        latest = await self._persistence.checkpointer.aget_tuple(
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        )
        return latest is not None and latest.metadata.get("run_id") == run_id

    def _check_webhook(self, url: str) -> None:
        if self._settings is None:
            raise InvalidRunConfig("webhook: webhooks are not available here")
        try:
            check_webhook_url(url, self._settings)
        except WebhookRejected as exc:
            raise InvalidRunConfig(f"webhook: {exc}") from None

    async def _admit(
        self,
        principal: str,
        thread_id: str | None,
        body: RunCreate,
        *,
        thread_checked_by_claim: bool = False,
    ) -> PreparedRun:
        if body.webhook is not None:
            self._check_webhook(body.webhook)
        assistant = await self._catalog.lookup(principal, body.assistant_id)
        if assistant is None:
            raise AssistantNotFound(body.assistant_id)
        graph_id = assistant.graph_id
        # A created assistant's config and context under the run's own (the run's keys win).
        merged, context = assistant.merged(body.config, body.context)
        body = body.model_copy(update={"config": merged, "context": context})
        if APPROVED_BY in (body.metadata or {}):
            raise InvalidRunConfig(
                f"metadata.{APPROVED_BY}: set by the service when an approver resumes a run"
            )
        principal, extra_metadata = await self._acting_for(principal, thread_id, graph_id, body)
        if extra_metadata:
            body = body.model_copy(update={"metadata": {**(body.metadata or {}), **extra_metadata}})
        graph = self._graphs[graph_id]
        run_id = str(uuid.uuid4())
        stateless = thread_id is None
        if thread_id is None:
            thread_id = str(uuid.uuid4())
            await self._tables.create_thread(thread_id, principal, {}, graph_id)
        elif not thread_checked_by_claim:
            await self._ensure_thread(thread_id, principal, graph_id, body)
        annotate(thread_id=thread_id, graph=graph_id, run_id=run_id)
        config = build_config(
            body, thread_id=thread_id, principal=principal, run_id=run_id, graph_id=graph_id
        )
        check_request(graph, body)
        graph_input = _command(body.command) if body.command is not None else body.input
        return PreparedRun(
            run_id=run_id,
            thread_id=thread_id,
            graph_id=graph_id,
            assistant_id=body.assistant_id,
            principal=principal,
            stateless=stateless,
            body=body,
            graph=graph,
            graph_input=graph_input,
            config=config,
        )

    async def _ensure_thread(
        self, thread_id: str, principal: str, graph_id: str, body: RunCreate
    ) -> None:
        thread = await self._tables.get_thread(thread_id, principal)
        if thread is None and body.if_not_exists == "create":
            if not 1 <= len(thread_id) <= MAX_THREAD_ID:
                raise InvalidRunConfig(f"thread_id: at most {MAX_THREAD_ID} characters")
            try:
                thread = await self._tables.create_thread(thread_id, principal, {}, graph_id)
            except ThreadExistsError:
                # Taken by another principal (or just now by ourselves): look again, scoped.
                thread = await self._tables.get_thread(thread_id, principal)
                if thread is None:
                    raise ThreadIdUnavailable(thread_id) from None
        if thread is None:
            raise ThreadNotFound(thread_id)
        if thread.graph_id is not None and thread.graph_id != graph_id:
            raise _graph_mismatch(thread_id, thread.graph_id, body.assistant_id, graph_id)

    async def _claim(self, record: RunRecord, thread_id: str, strategy: str) -> None:
        lease = self.lease_seconds
        if strategy in ("interrupt", "rollback"):
            # Double-texting: the thread's runs that have not ended are cancelled (and, with
            # rollback, deleted with their checkpoints) before this one takes the thread.
            active = await self._queue.active_run_ids(thread_id)
            if active:
                await self.cancel_runs(
                    active, "rollback" if strategy == "rollback" else "interrupt"
                )
        # With `reject`, a queued run that no worker has started yet holds the thread too.
        queued_holds = strategy == "reject"
        if await self._started(record, lease, queued_holds):
            return
        if strategy == "reject":
            raise ThreadBusy(_busy_message(thread_id))
        deadline = time.monotonic() + self.timeout_seconds
        delay = 0.02
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
            if await self._started(record, lease, queued_holds):
                return
        raise ThreadStayedBusy(
            f"thread {thread_id!r} stayed busy for {self.timeout_seconds:g} s; "
            "the enqueued run was not started"
        )

    async def _started(self, record: RunRecord, lease: float, queued_holds: bool) -> bool:
        """start_run; False while the thread is busy. A thread the principal does not have,
        or one of another graph, is an error here: `_admit` left that check to this claim."""
        start = await self._tables.start_run(record, lease, queued_holds=queued_holds)
        if start.started:
            return True
        thread_id = record.thread_id
        assert thread_id is not None  # an inline run always has its thread by now
        if not start.thread_found:
            raise ThreadNotFound(thread_id)
        if start.thread_graph_id is not None and start.thread_graph_id != record.graph_id:
            raise _graph_mismatch(
                thread_id, start.thread_graph_id, record.assistant_id, record.graph_id
            )
        return False

    # ----- running -----------------------------------------------------------------------

    def start(self, prepared: PreparedRun, *, stream: bool) -> RunningRun:
        """Run the graph in a task of its own. `stream`: emit the requested stream modes as
        events; otherwise (wait) only the final values are kept, serialized once at the end."""
        modes = prepared.body.stream_modes if stream else []
        running = RunningRun(
            prepared=prepared,
            translator=EventTranslator(modes, subgraphs=prepared.body.stream_subgraphs),
            queue=asyncio.Queue(),
        )
        running.task = asyncio.create_task(self._produce(running), name=prepared.run_id)
        self._tracker.add(running.task, prepared.thread_id, prepared.run_id)
        return running

    async def _produce(self, running: RunningRun) -> None:
        prepared = running.prepared
        body = prepared.body
        translator = running.translator
        kwargs: dict[str, Any] = {
            "stream_mode": langgraph_modes(translator.requested),
            "subgraphs": True,
        }
        if body.interrupt_before is not None:
            kwargs["interrupt_before"] = body.interrupt_before
        if body.interrupt_after is not None:
            kwargs["interrupt_after"] = body.interrupt_after
        if body.durability is not None:
            kwargs["durability"] = body.durability
        if body.context is not None:
            kwargs["context"] = body.context
        started = time.perf_counter()
        finished = Finished("error")
        producer = asyncio.current_task()
        assert producer is not None
        heartbeat = asyncio.create_task(self._keep_lease(prepared, producer))
        active = ACTIVE_RUNS.labels(graph=prepared.graph_id)
        active.inc()
        log.info(
            "run started",
            run_id=prepared.run_id,
            thread_id=prepared.thread_id,
            graph=prepared.graph_id,
            principal=prepared.principal,
        )
        span = tracer.start_span(
            f"run {prepared.graph_id}",
            attributes={"agent.graph": prepared.graph_id, "agent.run_id": prepared.run_id},
        )
        try:
            timeout = (
                self.background_timeout_seconds if prepared.background else self.timeout_seconds
            )
            async with asyncio.timeout(timeout):
                async for ns, mode, chunk in _graph_chunks(running, kwargs):
                    for event in translator.translate(ns, mode, chunk):
                        running.queue.put_nowait(event)
            for event in translator.flush():
                running.queue.put_nowait(event)
            finished = Finished("interrupted" if translator.interrupted else "success")
        except TimeoutError as exc:
            finished = Finished("timeout", exc)
        except asyncio.CancelledError as exc:
            finished = Finished("cancelled", exc)
            raise
        except Exception as exc:
            finished = Finished("error", exc)
        finally:
            span.set_attribute("agent.outcome", finished.outcome)
            if finished.outcome in ("error", "timeout"):
                span.set_status(trace.StatusCode.ERROR, finished.outcome)
            span.end()
            heartbeat.cancel()
            active.dec()
            # Record the outcome and free the thread before the client hears the end, so its
            # next run on the thread never races this one's release. A cancel that lands
            # meanwhile (it raced the run's completion) waits for the record: cut half-way, it
            # left the run `running` and its thread busy until the lease ran out.
            finishing = asyncio.ensure_future(
                self._finish(prepared, finished, time.perf_counter() - started, translator)
            )
            try:
                await asyncio.shield(finishing)
            except asyncio.CancelledError:
                await finishing
                raise
            finally:
                running.queue.put_nowait(finished)

    async def _finish(
        self,
        prepared: PreparedRun,
        finished: Finished,
        seconds: float,
        translator: EventTranslator,
    ) -> None:
        cancel = cancel_action(finished)
        if (
            finished.outcome == "cancelled"
            and finished.error is not None
            and SUPERSEDED in finished.error.args
        ):
            # The run, its thread's lease and its outcome belong to the later claim.
            return
        if prepared.background and finished.outcome == "cancelled" and cancel is None:
            # Not a client's cancel: the process is stopping. The run goes back to the queue
            # (its thread freed) and another worker continues it from its last checkpoint.
            log.info("background run handed back to the queue", run_id=prepared.run_id)
            try:
                await self._queue.hand_back(prepared.run_id)
            except Exception as exc:
                # Counted as a claim then; the run is still claimed again after its lease.
                log.warning("could not hand the run back", reason=type(exc).__name__)
            await self._release(prepared.thread_id, prepared.run_id, "idle")
            return
        if cancel == "rollback":
            await self._rollback(prepared)
            return
        if prepared.background and finished.outcome in ("success", "interrupted"):
            values = translator.last_values
            try:
                await self._queue.set_output(
                    prepared.run_id, to_jsonable(values if values is not None else {})
                )
            except Exception as exc:
                log.warning("could not store the run's output", reason=type(exc).__name__)
        await self._record_outcome(prepared, finished, seconds)
        if prepared.body.webhook is not None and self._settings is not None:
            self._send_webhook(prepared, finished, translator)

    def _send_webhook(
        self, prepared: PreparedRun, finished: Finished, translator: EventTranslator
    ) -> None:
        """POST the ended run to its webhook, as LangGraph's server does on completion, in a
        task of its own: the run's client and the thread never wait for the receiver."""
        assert self._settings is not None
        assert prepared.body.webhook is not None
        status = _RUN_STATUS[finished.outcome][0]
        payload: dict[str, Any] = {
            "run_id": prepared.run_id,
            "thread_id": prepared.thread_id,
            "assistant_id": prepared.assistant_id,
            "status": status,
            "metadata": prepared.body.metadata or {},
            "multitask_strategy": prepared.body.multitask_strategy,
            "created_at": prepared.created_at.isoformat(),
            "updated_at": datetime.now(UTC).isoformat(),
            "error": None if finished.error is None else run_failure_message(finished.error),
            "values": to_jsonable(translator.last_values) if status == "success" else None,
        }
        task = asyncio.create_task(
            deliver_run_webhook(prepared.body.webhook, payload, self._settings),
            name=f"webhook-{prepared.run_id}",
        )
        _DETACHED_TASKS.add(task)
        task.add_done_callback(_DETACHED_TASKS.discard)

    async def _rollback(self, prepared: PreparedRun) -> None:
        """What LangGraph's rollback does: the run and everything it checkpointed are gone, and
        the thread is as the previous run left it. Done before the thread is released, so the
        run that double-texted starts from that state."""
        try:
            await self._queue.rollback_run(prepared.thread_id, prepared.run_id)
        except Exception as exc:
            log.warning("could not roll the run back", reason=type(exc).__name__)
        GRAPH_EXECUTIONS.labels(graph=prepared.graph_id, status="cancelled").inc()
        log.info("run rolled back", run_id=prepared.run_id, thread_id=prepared.thread_id)
        await self._release(prepared.thread_id, prepared.run_id, "idle")

    async def _record_outcome(
        self, prepared: PreparedRun, finished: Finished, seconds: float
    ) -> None:
        status, thread_status = _RUN_STATUS[finished.outcome]
        # The alerts' and the canary's unit of work: a run's outcome, whatever HTTP status
        # carried it (a stream has answered 200 long before its run fails).
        GRAPH_EXECUTIONS.labels(graph=prepared.graph_id, status=finished.outcome).inc()
        RUN_DURATION.labels(graph=prepared.graph_id).observe(seconds)
        error = None if finished.error is None else run_failure_message(finished.error)
        log_fields = {
            "run_id": prepared.run_id,
            "thread_id": prepared.thread_id,
            "graph": prepared.graph_id,
            "principal": prepared.principal,
            "outcome": finished.outcome,
            "latency_ms": round(seconds * 1000, 1),
        }
        if finished.outcome == "error":
            # One line with the traceback; the PII filter redacts it like any other field.
            if isinstance(finished.error, psycopg.Error):
                # Its text quotes the statement's values (request data): kind and SQLSTATE.
                log.error(
                    "run failed",
                    error=type(finished.error).__name__,
                    sqlstate=finished.error.sqlstate,
                    **log_fields,
                )
            else:
                log.error("run failed", exc_info=finished.error, **log_fields)
        else:
            log.info("run finished", **log_fields)
        if not (prepared.stateless and prepared.body.on_completion == "delete"):
            try:
                # The outcome and the thread's release in one transaction (end_run).
                await self._tables.end_run(
                    prepared.run_id, prepared.thread_id, status, error, thread_status
                )
            except Exception as exc:
                log.warning(
                    "could not record the run's outcome",
                    run_id=prepared.run_id,
                    reason=type(exc).__name__,
                )
                await self._release(prepared.thread_id, prepared.run_id, thread_status)
            return
        try:
            await self._tables.finish_run(prepared.run_id, status, error)
        except Exception as exc:
            log.warning(
                "could not record the run's outcome",
                run_id=prepared.run_id,
                reason=type(exc).__name__,
            )
        if prepared.stateless and prepared.body.on_completion == "delete":
            if prepared.background:
                # Its client joins it after the end: the thread (and with it the run and its
                # output) goes a little later. A process that dies first leaves it to retention.
                await self._release(prepared.thread_id, prepared.run_id, thread_status)
                task = asyncio.create_task(self._delete_stateless_later(prepared))
                _DETACHED_TASKS.add(task)
                task.add_done_callback(_DETACHED_TASKS.discard)
            else:
                await self._delete_stateless(prepared)
        else:
            await self._release(prepared.thread_id, prepared.run_id, thread_status)

    async def _delete_stateless_later(self, prepared: PreparedRun) -> bool:
        await asyncio.sleep(STATELESS_JOIN_SECONDS)
        await self._delete_stateless(prepared)
        return True

    async def _keep_lease(self, prepared: PreparedRun, producer: asyncio.Task[Any]) -> None:
        thread_id, run_id = prepared.thread_id, prepared.run_id
        while True:
            await asyncio.sleep(self.renew_seconds)
            try:
                if prepared.claim is None:
                    await self._tables.renew_lease(thread_id, run_id, self.lease_seconds)
                    continue
                if not await self._queue.renew_claim(
                    thread_id, run_id, prepared.claim, self.lease_seconds
                ):
                    # This execution's lease ran out while it was alive (the database was away
                    # longer than the lease) and another worker claimed the run: two executions
                    # of one run would write to the thread together. This one stops, leaving
                    # the run, its thread and its outcome to the later claim.
                    log.warning("background run superseded by a later claim", run_id=run_id)
                    producer.cancel(SUPERSEDED)
                    return
            except Exception as exc:
                # The database is away; the run fails on its next checkpoint anyway.
                log.warning("could not renew the thread's lease", reason=type(exc).__name__)

    async def _release(self, thread_id: str, run_id: str, status: ThreadStatus) -> None:
        try:
            await self._tables.release_thread(thread_id, run_id, status)
        except Exception as exc:
            # The database is away. Keep trying in the background so the thread is free as soon
            # as it is back, rather than answering 409 until the lease runs out.
            log.warning(
                "could not release the thread; retrying until its lease expires",
                thread_id=thread_id,
                reason=type(exc).__name__,
            )
            task = asyncio.create_task(self._release_later(thread_id, run_id, status))
            self._pending_releases.add(task)
            task.add_done_callback(self._pending_releases.discard)

    async def _release_later(self, thread_id: str, run_id: str, status: ThreadStatus) -> None:
        deadline = time.monotonic() + self.lease_seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(RELEASE_RETRY_SECONDS)
            try:
                # Releases only if this run still holds the lease: never another run's.
                await self._tables.release_thread(thread_id, run_id, status)
            except Exception:  # noqa: S112 - still away; the loop is bounded by the lease
                continue
            log.info("released the thread after the database returned", thread_id=thread_id)
            return

    async def _delete_stateless(self, prepared: PreparedRun) -> None:
        try:
            await self._persistence.checkpointer.adelete_thread(prepared.thread_id)
            await self._tables.delete_thread(prepared.thread_id, prepared.principal)
        except Exception as exc:
            log.warning(
                "could not delete a stateless run's thread",
                thread_id=prepared.thread_id,
                reason=type(exc).__name__,
            )
