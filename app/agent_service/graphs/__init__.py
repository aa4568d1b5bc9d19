"""The LangGraph graphs the service serves: main_agent, research_agent, support_agent."""
