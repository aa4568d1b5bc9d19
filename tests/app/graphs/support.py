"""Graphs as a test builds them: in-memory persistence, the offline model (optionally recording
what it was sent), options small enough to reach every bound quickly."""

from __future__ import annotations

from typing import Any

from agent_service.graphs.options import GraphOptions
from agent_service.llm.offline import OfflineChatModel, message_text
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import RunnableConfig
from pydantic import Field


class RecordingModel(OfflineChatModel):
    """The offline model, keeping the text of every prompt it was sent."""

    prompts: list[str] = Field(default_factory=list)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.prompts.append("\n".join(message_text(m) for m in messages))
        return super()._generate(messages, stop, run_manager, **kwargs)


def options(**overrides: Any) -> GraphOptions:
    return GraphOptions(**overrides)


def config(thread_id: str, user_id: str = "alice") -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "user_id": user_id}}


def say(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}
