"""The benchmark serves the registry's graphs with the settings' graph options: a budget of
USER_MODEL_CALLS_PER_DAY, not the default one (a benchmark past 1000 runs measured refusals)."""

from __future__ import annotations

import asyncio
from typing import Any

from agent_service.settings import Settings
from langgraph.cache.memory import InMemoryCache
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from tools.bench.graphs import bench_graph_source
from tools.bench.one_node import ONE_NODE


def test_the_bench_graphs_take_the_settings_budget() -> None:
    source = bench_graph_source(Settings(model="offline", user_model_calls_per_day=2))
    graphs = source.build(
        checkpointer=InMemorySaver(),
        store=InMemoryStore(),
        cache=InMemoryCache(),
        model=source.model,
    )
    assert ONE_NODE in graphs

    async def turns() -> list[str]:
        replies = []
        for turn in range(3):
            config: Any = {"configurable": {"thread_id": f"t{turn}", "user_id": "bench"}}
            state = await graphs["main_agent"].ainvoke(
                {"messages": [{"role": "user", "content": f"hello {turn}"}]}, config
            )
            replies.append(str(state["messages"][-1].content))
        return replies

    replies = asyncio.run(turns())
    assert "limit of 2 model calls" not in replies[1]
    assert "limit of 2 model calls" in replies[2]
