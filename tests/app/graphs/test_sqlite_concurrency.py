"""The embedded SQLite default under concurrent runs that write checkpoints and store items:
no "database is locked" (the store and the checkpointer share one writer lock)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest
from agent_service.graphs.source import registry_graph_source

from tests.app.server.conftest import make_settings
from tests.app.server.service import KEYS, serve_in_thread

pytestmark = pytest.mark.integration


def test_concurrent_threads_on_sqlite_all_succeed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with serve_in_thread(settings, graph_source=registry_graph_source) as service:

        async def scenario() -> Counter[int]:
            statuses: Counter[int] = Counter()
            headers = {"X-API-Key": KEYS["alice"]}
            async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=60) as http:
                threads = [
                    (await http.post("/threads", json={})).json()["thread_id"] for _ in range(16)
                ]

                async def turns(thread_id: str) -> None:
                    for n in range(6):
                        text = f"remember that fact {n}" if n % 2 else f"hello {n}"
                        body = {
                            "assistant_id": "main_agent",
                            "input": {"messages": [{"role": "user", "content": text}]},
                        }
                        answer = await http.post(f"/threads/{thread_id}/runs/wait", json=body)
                        statuses[answer.status_code] += 1

                await asyncio.gather(*(turns(t) for t in threads))
            return statuses

        assert asyncio.run(scenario()) == Counter({200: 96})
