"""`support_agent`: a customer-support agent whose tools update the conversation's state with
`Command` (the order in question, the ticket's priority) and whose escalation to a human
interrupts the run until a supervisor approves or declines it (`Command(resume=...)`).
The same guardrails as main_agent's: PII-redacting state, the injection refusal, the user's
daily model-call budget and usage accounting. Orders are read from the Store under
("orders", <user>), written by the shop's systems (the service itself never writes them)."""

from __future__ import annotations

from typing import Any, Literal, NotRequired

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain.tools import ToolRuntime, tool
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langgraph.cache.base import BaseCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore
from langgraph.types import Command, interrupt

from agent_service.core.principal import user_id_of
from agent_service.graphs.options import GraphOptions
from agent_service.guardrails.accounting import UsageAccounting
from agent_service.guardrails.injection import PromptInjectionGuard
from agent_service.guardrails.pii import RedactedAgentState
from agent_service.guardrails.user_limit import UserModelCallLimit
from agent_service.llm.offline import INTENT_METADATA_KEY

GRAPH_ID = "support_agent"
ORDER_NAMESPACE = "orders"
Priority = Literal["low", "normal", "high", "urgent"]
SYSTEM_PROMPT = (
    "You are a support agent. Look orders up before answering about them, set the ticket's "
    "priority when the customer's issue warrants it, and escalate to a human supervisor when "
    "you cannot resolve the issue yourself."
)


class SupportState(RedactedAgentState):
    order_id: NotRequired[str]
    order_status: NotRequired[str]
    priority: NotRequired[str]
    escalation: NotRequired[dict[str, Any]]


def _reply(runtime: ToolRuntime, text: str, **update: Any) -> Command[Any]:
    message = ToolMessage(content=text, tool_call_id=runtime.tool_call_id or "")
    return Command(update={**update, "messages": [message]})


@tool
async def lookup_order(order_id: str, runtime: ToolRuntime) -> Command[Any]:
    """Look an order of this customer up and make it the conversation's current order."""
    assert runtime.store is not None, "support_agent is compiled with a store"
    item = await runtime.store.aget((ORDER_NAMESPACE, user_id_of(runtime.config)), order_id)
    status = str(item.value.get("status", "unknown")) if item else "not found"
    return _reply(runtime, f"Order {order_id}: {status}.", order_id=order_id, order_status=status)


@tool
def set_priority(level: Priority, runtime: ToolRuntime) -> Command[Any]:
    """Set the ticket's priority."""
    return _reply(runtime, f"Priority set to {level}.", priority=level)


@tool
def escalate(runtime: ToolRuntime, reason: str = "customer asked for a human") -> Command[Any]:
    """Hand the ticket to a human supervisor; waits for the supervisor's decision."""
    state = runtime.state
    decision = interrupt(
        {
            "action": "escalate",
            "reason": reason,
            "order_id": state.get("order_id"),
            "priority": state.get("priority", "normal"),
            "expects": {"approved": "bool", "assignee": "str (optional)", "note": "str"},
        }
    )
    answer = decision if isinstance(decision, dict) else {"approved": bool(decision)}
    approved = bool(answer.get("approved"))
    escalation = {
        "status": "approved" if approved else "declined",
        "reason": reason,
        "assignee": str(answer.get("assignee", "")),
        "note": str(answer.get("note", "")),
    }
    text = (
        f"Escalated to {escalation['assignee'] or 'a supervisor'}."
        if approved
        else f"Escalation declined: {escalation['note'] or 'no reason given'}."
    )
    return _reply(runtime, text, escalation=escalation)


def _with_intent(tool_: BaseTool, pattern: str) -> BaseTool:
    tool_.metadata = {**(tool_.metadata or {}), INTENT_METADATA_KEY: pattern}
    return tool_


def tools() -> list[BaseTool]:
    # The offline model tries intents in this order: escalation wins over an order mention.
    return [
        _with_intent(
            escalate, r"\b(?:escalate|speak to a (?:human|manager))\b(?:\s*:\s*(?P<reason>.+))?"
        ),
        _with_intent(set_priority, r"\bpriority\s+(?:to\s+)?(?P<level>urgent|high|normal|low)\b"),
        _with_intent(lookup_order, r"\border\s+(?P<order_id>[A-Za-z0-9-]*\d[A-Za-z0-9-]*)"),
    ]


def build_support_agent(
    *,
    model: BaseChatModel,
    options: GraphOptions,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    store: BaseStore | None = None,
    cache: BaseCache[Any] | None = None,
) -> Pregel[Any, Any, Any, Any]:
    # Around the model call, outermost first: a refused turn costs no budget and no tokens.
    guardrails: list[AgentMiddleware[Any, Any]] = [
        PromptInjectionGuard(),
        UserModelCallLimit(options.user_model_calls_per_day),
        UsageAccounting(options.model),
    ]
    return create_agent(
        model,
        tools(),
        system_prompt=SYSTEM_PROMPT,
        state_schema=SupportState,
        middleware=guardrails,
        checkpointer=checkpointer,
        store=store,
        cache=cache,
        name=GRAPH_ID,
    )
