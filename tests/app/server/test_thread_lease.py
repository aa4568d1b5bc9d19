"""A run keeps its thread with a short lease renewed while it lives: a second run is refused
for as long as the first runs, even past the lease's length."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from agent_service.runs import engine as run_engine

from tests.app.server.conftest import make_settings
from tests.app.server.graphs import GRAPH_ID, say
from tests.app.server.service import KEYS, serve_in_thread

pytestmark = pytest.mark.integration


def test_a_long_run_keeps_its_thread_past_the_lease(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_engine, "LEASE_SECONDS", 1.0)
    monkeypatch.setattr(run_engine, "LEASE_RENEW_SECONDS", 0.2)
    with serve_in_thread(make_settings(tmp_path)) as service:

        async def scenario() -> tuple[int, int, int]:
            import httpx

            headers = {"X-API-Key": KEYS["alice"]}
            async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=30) as http:
                thread = (await http.post("/threads", json={})).json()["thread_id"]
                long_run = asyncio.create_task(
                    http.post(
                        f"/threads/{thread}/runs/wait",
                        json={
                            "assistant_id": GRAPH_ID,
                            "input": say("slow"),
                            "config": {"configurable": {"delay": 2.5}},
                        },
                    )
                )
                await asyncio.sleep(1.8)  # past the 1 s lease: only renewal keeps it
                second = await http.post(
                    f"/threads/{thread}/runs/wait",
                    json={"assistant_id": GRAPH_ID, "input": say("too soon")},
                )
                first = await long_run
                third = await http.post(
                    f"/threads/{thread}/runs/wait",
                    json={"assistant_id": GRAPH_ID, "input": say("after")},
                )
                return first.status_code, second.status_code, third.status_code

        assert asyncio.run(scenario()) == (200, 409, 200)
