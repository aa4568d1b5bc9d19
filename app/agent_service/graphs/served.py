"""Module-level graphs for `langgraph dev` / LangGraph Server (app/langgraph.json): the same
graphs, compiled without persistence (that server brings its own), with the model named by
MODEL (offline by default)."""

from __future__ import annotations

from agent_service.graphs.main_agent import build_main_agent
from agent_service.graphs.research_agent import build_research_agent
from agent_service.graphs.support_agent import build_support_agent
from agent_service.llm.factory import build_model
from agent_service.settings import load_settings

# The same settings as the service's (environment and SECRETS_DIR), read once at import.
_settings = load_settings()
_options = _settings.graph_options()
_key = _settings.model_api_key
_model = build_model(_options.model, None if _key is None else _key.get_secret_value())

main_agent = build_main_agent(model=_model, options=_options)
research_agent = build_research_agent(model=_model, options=_options)
support_agent = build_support_agent(model=_model, options=_options)
