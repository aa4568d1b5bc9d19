"""research_agent: Send fan-out, per-task timeout / retry / cache, deferred aggregation."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from agent_service.graphs.metered_cache import MeteredCache
from agent_service.graphs.research_agent import (
    TransientResearchError,
    build_research_agent,
    split_topics,
)
from agent_service.llm.offline import OfflineChatModel
from agent_service.metrics import NODE_CACHE_HITS
from langgraph.cache.memory import InMemoryCache
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from tests.app.graphs.support import config, options

pytestmark = pytest.mark.anyio


class Source:
    """Research outcomes by topic: 'slow' outlasts the timeout, 'broken' always fails,
    'flaky' fails once with a transient error."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    async def __call__(self, topic: str) -> str:
        self.calls[topic] += 1
        if topic == "slow":
            await asyncio.sleep(5)
        if topic == "broken":
            raise ValueError("no sources found")
        if topic == "flaky" and self.calls[topic] == 1:
            raise TransientResearchError("connection reset")
        return f"facts about {topic}"


def build(
    source: Source,
    *,
    cache: InMemoryCache[Any] | None = None,
    store: InMemoryStore | None = None,
    **overrides: Any,
) -> Any:
    tuned = {"research_worker_timeout_seconds": 0.3, "research_worker_attempts": 2, **overrides}
    return build_research_agent(
        model=OfflineChatModel(),
        options=options(**tuned),
        checkpointer=InMemorySaver(),
        store=store,
        cache=MeteredCache(cache or InMemoryCache()),
        source=source,
    )


def test_questions_split_into_unique_topics() -> None:
    assert split_topics("Solar, wind and tides; solar?", 8) == ["Solar", "wind", "tides", "solar"]
    assert split_topics("a, b, c", 2) == ["a", "b"]


async def test_every_outcome_is_reported_and_the_run_succeeds() -> None:
    source = Source()
    agent = build(source)
    result = await agent.ainvoke({"topics": ["ok", "slow", "broken", "flaky"]}, config("r1"))
    report = result["report"]
    assert (report["tasks"], report["succeeded"], report["failed"]) == (4, 2, 2)
    assert report["success_rate"] == 0.5
    assert set(report["errors"]) == {"t2", "t3"}
    assert "Timeout" in report["errors"]["t2"]
    assert report["errors"]["t3"] == "ValueError: no sources found"
    assert source.calls["flaky"] == 2  # a transient error is retried
    assert source.calls["slow"] == 2  # so is a timeout, up to the attempts allowed
    assert source.calls["broken"] == 1  # a permanent error is not
    assert "2 succeeded" in result["messages"][-1].content


async def test_successes_come_from_the_cache_and_failures_are_retried() -> None:
    source = Source()
    agent = build(source)
    hits = NODE_CACHE_HITS.labels("research_topic")._value.get()
    await agent.ainvoke({"topics": ["ok", "broken"]}, config("c1"))
    second = await agent.ainvoke({"topics": ["ok", "broken"]}, config("c2"))
    assert source.calls["ok"] == 1
    assert source.calls["broken"] == 2  # a failure is never cached
    assert NODE_CACHE_HITS.labels("research_topic")._value.get() == hits + 1
    assert second["report"]["succeeded"] == 1


async def test_a_new_model_is_not_answered_from_the_old_ones_cache() -> None:
    source, cache = Source(), InMemoryCache[Any]()
    await build(source, cache=cache, model="offline").ainvoke({"topics": ["ok"]}, config("m1"))
    await build(source, cache=cache, model="openai:gpt-4o").ainvoke(
        {"topics": ["ok"]}, config("m2")
    )
    assert source.calls["ok"] == 2


async def test_research_calls_spend_the_users_daily_budget() -> None:
    source, store = Source(), InMemoryStore()
    agent = build(source, store=store, user_model_calls_per_day=2)
    first = await agent.ainvoke({"topics": ["a", "b"]}, config("b1", "carol"))
    assert first["report"]["success_rate"] == 1.0
    second = await agent.ainvoke({"topics": ["a", "c"]}, config("b2", "carol"))
    report = second["report"]
    assert report["succeeded"] == 1  # "a" comes from the cache and costs nothing
    assert report["errors"]["t2"].startswith("ModelCallBudgetExceeded: You have reached today")
    assert source.calls["c"] == 0  # refused before the source, and never retried
    other = await agent.ainvoke({"topics": ["c"]}, config("b3", "dave"))
    assert other["report"]["success_rate"] == 1.0


async def test_pii_in_the_question_never_reaches_the_research_nor_the_state() -> None:
    source = Source()
    agent = build(source)
    cfg = config("p")
    result = await agent.ainvoke({"question": "jane@example.com and 123-45-6789"}, cfg)
    assert set(source.calls) == {"[REDACTED_EMAIL]", "[REDACTED_SSN]"}
    assert result["report"]["question"] == "[REDACTED_EMAIL] and [REDACTED_SSN]"
    states = [repr(snapshot.values) async for snapshot in agent.aget_state_history(cfg)]
    assert not any("jane@example.com" in state for state in states)


async def test_a_threads_next_run_replans() -> None:
    agent = build(Source())
    await agent.ainvoke({"question": "alpha and beta"}, config("t"))
    result = await agent.ainvoke({"messages": [{"role": "user", "content": "gamma"}]}, config("t"))
    assert result["report"]["question"] == "gamma"
    assert result["report"]["tasks"] == 1


async def test_the_offline_model_researches_by_default() -> None:
    agent = build_research_agent(
        model=OfflineChatModel(), options=options(), checkpointer=InMemorySaver()
    )
    result = await agent.ainvoke({"question": "rivers and lakes"}, config("m"))
    assert result["report"]["success_rate"] == 1.0
    assert [f["topic"] for f in result["findings"]] == ["rivers", "lakes"]
