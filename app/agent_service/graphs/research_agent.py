"""`research_agent`: a question split into topics, each researched by its own worker (fan-out
with `Send`), the findings joined by a deferred aggregator that reports the success rate and
each failed task's error.

A worker's research step is a LangGraph task with a timeout, a retry policy and a cache policy
(the node cache: Redis when configured). The worker itself turns the step's final failure into
an error finding, so one failed topic never fails the whole run, and a failure is never cached
(LangGraph caches only a step that finished). A step that does call the model counts against
the user's daily model-call budget, as main_agent's turns do; a cached one costs nothing.
The question and topics are PII-redacted by their reducers, before the model or the state.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NotRequired

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langgraph.cache.base import BaseCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_config
from langgraph.errors import NodeTimeoutError
from langgraph.func import task
from langgraph.graph import END, START, StateGraph
from langgraph.pregel import Pregel
from langgraph.runtime import get_runtime
from langgraph.store.base import BaseStore
from langgraph.types import CachePolicy, RetryPolicy, Send

# pydantic (hence the API's get_schemas) describes only typing_extensions.TypedDict on 3.11.
from typing_extensions import TypedDict

from agent_service.core.principal import user_id_of
from agent_service.graphs.options import GraphOptions
from agent_service.guardrails.pii import add_messages_redacted
from agent_service.guardrails.redaction import redact
from agent_service.guardrails.user_limit import (
    ModelCallBudgetExceeded,
    consume_model_call,
    limit_message,
)
from agent_service.llm.offline import message_text
from agent_service.metrics import RESEARCH_TASKS

GRAPH_ID = "research_agent"
ResearchSource = Callable[[str], Awaitable[str]]


class TransientResearchError(Exception):
    """A failure worth retrying (a provider hiccup, a dropped connection)."""


class Finding(TypedDict):
    task_id: str
    topic: str
    ok: bool
    summary: str
    error: str


def collect_findings(current: list[Finding], update: list[Finding] | None) -> list[Finding]:
    """Workers append; `None` (written by the planner) starts a new run's collection."""
    return [] if update is None else [*current, *update]


def redacted_text(_current: str, update: str) -> str:
    return redact(update)


def redacted_texts(_current: list[str], update: list[str]) -> list[str]:
    return [redact(text) for text in update]


class ResearchState(TypedDict):
    messages: NotRequired[Annotated[list[AnyMessage], add_messages_redacted]]
    # Input only, like `topics`: the planner moves it to `asked`.
    question: NotRequired[Annotated[str, redacted_text]]
    asked: NotRequired[str]
    # Input only: explicit topics; the planner consumes them (so a thread's next run re-plans).
    topics: NotRequired[Annotated[list[str], redacted_texts]]
    planned_topics: NotRequired[list[str]]
    findings: NotRequired[Annotated[list[Finding], collect_findings]]
    report: NotRequired[dict[str, Any]]


class WorkerInput(TypedDict):
    task_id: str
    topic: str


def split_topics(question: str, limit: int) -> list[str]:
    """Topics of a question: its parts separated by ';', ',' or ' and '."""
    parts = re.split(r";|,|\band\b", question)
    topics = [" ".join(part.split()).strip(" ?.") for part in parts]
    unique = list(dict.fromkeys(topic for topic in topics if topic))
    return unique[:limit]


def model_source(model: BaseChatModel) -> ResearchSource:
    async def research(topic: str) -> str:
        reply = await model.ainvoke(
            [
                SystemMessage("Summarise the key facts about the topic in three sentences."),
                HumanMessage(topic),
            ]
        )
        return message_text(reply)

    return research


def _question_of(state: ResearchState) -> str:
    if state.get("question"):
        return str(state["question"])
    humans = [m for m in state.get("messages", []) if isinstance(m, HumanMessage)]
    return message_text(humans[-1]) if humans else ""


def build_research_agent(
    *,
    model: BaseChatModel,
    options: GraphOptions,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    store: BaseStore | None = None,
    cache: BaseCache[Any] | None = None,
    source: ResearchSource | None = None,
) -> Pregel[Any, Any, Any, Any]:
    research = source or model_source(model)

    def topic_key(topic: str) -> str:
        # Keyed by the model too: a new MODEL must not be answered from the old one's findings.
        return f"{options.model}|{topic.lower()}"

    topic_cache: CachePolicy[Callable[[str], str | bytes]] = CachePolicy(
        key_func=topic_key, ttl=options.research_cache_ttl_seconds
    )

    # task's decorator overloads cannot infer the result type (it becomes Never).
    @task(  # type: ignore[arg-type]
        name="research_topic",
        timeout=options.research_worker_timeout_seconds,
        retry_policy=RetryPolicy(
            max_attempts=options.research_worker_attempts,
            initial_interval=0.2,
            retry_on=(TransientResearchError, NodeTimeoutError, ConnectionError, TimeoutError),
        ),
        cache_policy=topic_cache,
    )
    async def research_topic(topic: str) -> str:
        store = get_runtime().store
        limit = options.user_model_calls_per_day
        if not await consume_model_call(store, user_id_of(get_config()), limit):
            raise ModelCallBudgetExceeded(limit_message(limit))
        return await research(topic)

    def plan(state: ResearchState) -> dict[str, Any]:
        question = _question_of(state)
        topics = state.get("topics") or split_topics(question, options.research_max_tasks)
        planned = topics[: options.research_max_tasks]
        return {
            "question": "",
            "topics": [],
            "asked": question,
            "planned_topics": planned,
            "findings": None,
        }

    def fan_out(state: ResearchState) -> list[Send] | str:
        topics = state.get("planned_topics") or []
        if not topics:
            return "aggregate"
        return [
            Send("research_worker", WorkerInput(task_id=f"t{i}", topic=topic))
            for i, topic in enumerate(topics, start=1)
        ]

    async def research_worker(job: WorkerInput) -> dict[str, Any]:
        try:
            summary: str = await research_topic(job["topic"])
        except Exception as exc:
            RESEARCH_TASKS.labels("error").inc()
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
            finding = Finding(**job, ok=False, summary="", error=error)
        else:
            RESEARCH_TASKS.labels("success").inc()
            finding = Finding(**job, ok=True, summary=summary, error="")
        return {"findings": [finding]}

    def aggregate(state: ResearchState) -> dict[str, Any]:
        findings = sorted(state.get("findings", []), key=lambda f: int(f["task_id"][1:]))
        succeeded = [f for f in findings if f["ok"]]
        total = len(findings)
        report = {
            "question": state.get("asked", ""),
            "tasks": total,
            "succeeded": len(succeeded),
            "failed": total - len(succeeded),
            "success_rate": round(len(succeeded) / total, 4) if total else 0.0,
            "errors": {f["task_id"]: f["error"] for f in findings if not f["ok"]},
        }
        lines = [f"- {f['topic']}: {f['summary']}" for f in succeeded]
        lines += [f"- {f['topic']}: failed ({f['error']})" for f in findings if not f["ok"]]
        text = f"Research on {total} topic(s), {len(succeeded)} succeeded.\n" + "\n".join(lines)
        return {"report": report, "messages": [AIMessage(content=text)]}

    builder = StateGraph(ResearchState)
    builder.add_node("plan", plan)
    builder.add_node("research_worker", research_worker)  # type: ignore[arg-type]
    # Deferred: runs once, after every worker of the fan-out has finished.
    builder.add_node("aggregate", aggregate, defer=True)
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", fan_out, ["research_worker", "aggregate"])
    builder.add_edge("research_worker", "aggregate")
    builder.add_edge("aggregate", END)
    return builder.compile(checkpointer=checkpointer, store=store, cache=cache, name=GRAPH_ID)
