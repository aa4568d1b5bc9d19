"""Whole-history operations on a thread's checkpoints, for both backends: copy them to a new
thread (threads.copy) and keep only the latest (threads.prune strategy="keep_latest").

The copy goes through the checkpointer's own read and write calls, so it stores exactly what a
run would have stored, and it passes through the owner guard (`persistence.guard`): a copy
whose target thread is deleted meanwhile stops writing.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointMetadata

from agent_service.persistence.backends import Persistence
from agent_service.persistence.sqlite_tables import SqliteTables


async def copy_checkpoints(
    saver: BaseCheckpointSaver[Any], source: str, target: str, owner: str
) -> int:
    """Copy every checkpoint (every namespace) and its pending writes from `source` to the
    new thread `target`, keeping checkpoint ids and parent links. Returns how many."""
    history = [t async for t in saver.alist({"configurable": {"thread_id": source}})]
    # Oldest first, so a reader of the target never sees a checkpoint before its parent.
    for item in reversed(history):
        namespace = item.config["configurable"].get("checkpoint_ns", "")
        configurable: dict[str, Any] = {
            "thread_id": target,
            "checkpoint_ns": namespace,
            "user_id": owner,
        }
        if item.parent_config is not None:
            configurable["checkpoint_id"] = item.parent_config["configurable"]["checkpoint_id"]
        metadata = cast(CheckpointMetadata, dict(item.metadata))
        if "thread_id" in metadata:
            # Runs record their thread in the metadata: the copy's is the new thread.
            cast(dict[str, Any], metadata)["thread_id"] = target
        put: RunnableConfig = {"configurable": configurable}
        await saver.aput(put, item.checkpoint, metadata, item.checkpoint["channel_versions"])
        by_task: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        for task_id, channel, value in item.pending_writes or ():
            by_task[task_id].append((channel, value))
        written: RunnableConfig = {
            "configurable": {
                "thread_id": target,
                "checkpoint_ns": namespace,
                "checkpoint_id": item.checkpoint["id"],
                "user_id": owner,
            }
        }
        for task_id, writes in by_task.items():
            await saver.aput_writes(written, writes, task_id)
    return len(history)


async def keep_latest(persistence: Persistence, thread_id: str) -> None:
    """Delete every checkpoint of the thread but the latest of each namespace (with its
    pending writes): the thread's state and its next run are unchanged, its history is gone."""
    tables = persistence.tables
    if isinstance(tables, SqliteTables):
        await tables.keep_latest_checkpoints(thread_id)
    else:
        # langgraph-checkpoint-postgres >= 3.2 (`AsyncPostgresSaver.aprune`).
        await persistence.checkpointer.aprune([thread_id], strategy="keep_latest")
