"""Module-level graphs for `langgraph dev` / LangGraph Server (app/langgraph.json): the same
graphs, compiled without persistence (that server brings its own), with the model named by
MODEL (offline by default)."""

from __future__ import annotations

import os

from agent_service.graphs.main_agent import build_main_agent
from agent_service.graphs.options import GraphOptions
from agent_service.graphs.research_agent import build_research_agent
from agent_service.graphs.support_agent import build_support_agent
from agent_service.llm.factory import build_model

_options = GraphOptions()
_model = build_model(_options.model, os.environ.get("MODEL_API_KEY"))

main_agent = build_main_agent(model=_model, options=_options)
research_agent = build_research_agent(model=_model, options=_options)
support_agent = build_support_agent(model=_model, options=_options)
