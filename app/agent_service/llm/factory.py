"""The model named by the MODEL setting: `offline` or `provider:model` for init_chat_model."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel

from agent_service.llm.offline import OFFLINE_MODEL_NAME, OfflineChatModel


class ModelConfigError(ValueError):
    """MODEL names no usable model; the message says what to set."""


def build_model(model_setting: str, api_key: str | None) -> BaseChatModel:
    if model_setting == OFFLINE_MODEL_NAME:
        return OfflineChatModel()
    if ":" not in model_setting:
        raise ModelConfigError(
            f"MODEL={model_setting!r}: expected 'offline' or 'provider:model' "
            "(for example 'openai:gpt-4o-mini')"
        )
    if not api_key:
        raise ModelConfigError(
            f"MODEL={model_setting!r} needs MODEL_API_KEY (or the model_api_key secret file)"
        )
    # Imported here: the offline default must not need langchain's provider machinery.
    from langchain.chat_models import init_chat_model

    kwargs: dict[str, Any] = {"api_key": api_key}
    model: BaseChatModel = init_chat_model(model_setting, **kwargs)
    return model


def describe_model(model_setting: str) -> str:
    if model_setting == OFFLINE_MODEL_NAME:
        return "offline (deterministic built-in model, no provider, no key)"
    return model_setting
