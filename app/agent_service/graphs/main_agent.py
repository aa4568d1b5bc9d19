"""`main_agent`: a tool-calling chat agent with guardrails around the model.

PII is redacted by the state's `messages` reducer, before the model or the state holds it.
Middleware: summarisation of long histories before the model; around the model call, the
prompt-injection refusal, the per-user daily budget and token/cost accounting; after it, a
human's approval of sensitive tool calls.
Memory tools read and write the user's own store space, ("users", <user>, "memories"): shared by
the user's threads, and what the Store API shows the user as namespace ["memories"].
Recall searches by meaning (the store's embeddings, `agent_service.embeddings`).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    HumanInTheLoopMiddleware,
    SummarizationMiddleware,
)
from langchain.tools import ToolRuntime, tool
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.cache.base import BaseCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore

from agent_service.core.principal import (
    MEMORY_INDEX_FIELDS,
    user_id_of,
    user_namespace,
)
from agent_service.core.principal import MEMORY_NAMESPACE as MEMORY_NAMESPACE
from agent_service.graphs.options import GraphOptions
from agent_service.guardrails.accounting import UsageAccounting
from agent_service.guardrails.injection import PromptInjectionGuard
from agent_service.guardrails.pii import RedactedAgentState
from agent_service.guardrails.user_limit import UserModelCallLimit
from agent_service.llm.offline import INTENT_METADATA_KEY
from agent_service.metrics import GUARDRAIL_EVENTS

GRAPH_ID = "main_agent"
REFUND_NAMESPACE = "refunds"
SENSITIVE_TOOLS = ("issue_refund",)
# What recall returns at most: the closest memories by meaning when there is a query.
RECALL_LIMIT = 10

SYSTEM_PROMPT = (
    "You are a helpful assistant for the customers of an online shop. Use the memory tools "
    "to remember and recall what the user tells you about themselves. Refunds need a human's "
    "approval; never promise one before it is approved."
)


def _stamp() -> str:
    return datetime.now(UTC).isoformat()


@tool
async def save_memory(text: str, runtime: ToolRuntime) -> str:
    """Remember a fact the user shared, for this and the user's other conversations."""
    assert runtime.store is not None, "main_agent is compiled with a store"
    user = user_id_of(runtime.config)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    await runtime.store.aput(
        user_namespace(user, MEMORY_NAMESPACE),
        key,
        {"text": text, "saved_at": _stamp()},
        index=MEMORY_INDEX_FIELDS,
    )
    return f"Saved to memory: {text}"


@tool
async def recall_memories(runtime: ToolRuntime, query: str = "") -> str:
    """Recall what the user asked to remember; with `query`, the memories closest to it in
    meaning first."""
    assert runtime.store is not None, "main_agent is compiled with a store"
    user = user_id_of(runtime.config)
    namespace = user_namespace(user, MEMORY_NAMESPACE)
    semantic = bool(query) and getattr(runtime.store, "index_config", None) is not None
    items = await runtime.store.asearch(
        namespace, query=query if semantic else None, limit=RECALL_LIMIT if semantic else 50
    )
    texts = [str(item.value.get("text", "")) for item in items]
    if query and not semantic:
        # STORE_EMBEDDINGS=none: the words themselves.
        texts = sorted(text for text in texts if query.lower() in text.lower())
    elif not query:
        texts = sorted(texts)
    return "I remember: " + "; ".join(texts) if texts else "I have nothing remembered."


@tool
async def issue_refund(order_id: str, amount: float, runtime: ToolRuntime) -> str:
    """Refund `amount` on an order. Sensitive: runs only after a human approves it."""
    assert runtime.store is not None, "main_agent is compiled with a store"
    user = user_id_of(runtime.config)
    reference = "R-" + hashlib.sha256(f"{user}:{order_id}:{amount}".encode()).hexdigest()[:8]
    record = {"order_id": order_id, "amount": amount, "issued_at": _stamp()}
    # A record of the service's, outside the user's own space; never searched by meaning.
    await runtime.store.aput((REFUND_NAMESPACE, user), reference, record, index=False)
    return f"Refund {reference} of {amount:.2f} issued for order {order_id}."


def _with_intent(tool_: BaseTool, pattern: str) -> BaseTool:
    # What the offline model matches to call the tool; real models read the docstring.
    tool_.metadata = {**(tool_.metadata or {}), INTENT_METADATA_KEY: pattern}
    return tool_


def tools() -> list[BaseTool]:
    return [
        _with_intent(save_memory, r"^(?:please\s+)?remember(?:\s+that)?\s+(?P<text>.+)$"),
        _with_intent(
            recall_memories,
            r"\b(?:what do you remember|recall|what do you know about me)"
            r"(?:\s+about\s+(?P<query>[^?]+))?",
        ),
        _with_intent(
            issue_refund,
            # Bounded gaps: `.*?` and `\D*?` made a long message cost the square of its length.
            r"\brefund\b.{0,200}?\border\s+(?P<order_id>[A-Za-z0-9-]{1,64})"
            r"\D{0,40}?(?P<amount>\d{1,12}(?:\.\d{1,4})?)",
        ),
    ]


class MeteredSummarization(SummarizationMiddleware):
    def before_model(self, state: AgentState[Any], runtime: Runtime[Any]) -> dict[str, Any] | None:
        update = super().before_model(state, runtime)
        if update:
            GUARDRAIL_EVENTS.labels("summarization", "summarized").inc()
        return update

    async def abefore_model(
        self, state: AgentState[Any], runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        update = await super().abefore_model(state, runtime)
        if update:
            GUARDRAIL_EVENTS.labels("summarization", "summarized").inc()
        return update


def middleware(model: BaseChatModel, options: GraphOptions) -> list[AgentMiddleware[Any, Any]]:
    # Graph steps (each one a checkpoint): summarisation before the model, the approval of
    # sensitive tools after it. The refusal, the budget and the accounting wrap the model call
    # itself, outermost first, so a refused turn costs no budget and no tokens.
    return [
        MeteredSummarization(
            model,
            trigger=("messages", options.summarize_after_messages),
            keep=("messages", options.summarize_keep_messages),
        ),
        PromptInjectionGuard(),
        UserModelCallLimit(options.user_model_calls_per_day),
        UsageAccounting(options.model),
        HumanInTheLoopMiddleware(
            interrupt_on={
                name: {"allowed_decisions": ["approve", "reject"]} for name in SENSITIVE_TOOLS
            },
            description_prefix="Approval needed before a refund",
        ),
    ]


def build_main_agent(
    *,
    model: BaseChatModel,
    options: GraphOptions,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    store: BaseStore | None = None,
    cache: BaseCache[Any] | None = None,
) -> Pregel[Any, Any, Any, Any]:
    return create_agent(
        model,
        tools(),
        system_prompt=SYSTEM_PROMPT,
        state_schema=RedactedAgentState,
        middleware=middleware(model, options),
        checkpointer=checkpointer,
        store=store,
        cache=cache,
        name=GRAPH_ID,
    )
