"""Tuning of the graphs, from the environment (the same process environment as the service's
settings; documented in docs/service-interface.md)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GraphOptions(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    # The MODEL setting names the model in metrics and prices it.
    model: str = "offline"
    user_model_calls_per_day: int = Field(default=1000, ge=1)
    summarize_after_messages: int = Field(default=40, ge=4)
    summarize_keep_messages: int = Field(default=10, ge=2)
    research_max_tasks: int = Field(default=8, ge=1, le=64)
    research_worker_timeout_seconds: float = Field(default=20.0, gt=0)
    research_worker_attempts: int = Field(default=3, ge=1, le=10)
    research_cache_ttl_seconds: int = Field(default=3600, ge=1)
