"""The model named by the MODEL setting: `offline` or `provider:model` for init_chat_model.
Either way the model carries the usage-metrics callback, labelled with the setting."""

from __future__ import annotations

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel

from agent_service.llm.offline import OFFLINE_MODEL_NAME, OfflineChatModel
from agent_service.llm.usage_metrics import UsageMetrics


class ModelConfigError(ValueError):
    """MODEL names no usable model; the message says what to set."""


def build_model(model_setting: str, api_key: str | None) -> BaseChatModel:
    callbacks: list[BaseCallbackHandler] = [UsageMetrics(model_setting)]
    if model_setting == OFFLINE_MODEL_NAME:
        return OfflineChatModel(callbacks=callbacks)
    provider, _, name = model_setting.partition(":")
    if not provider or not name:
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

    try:
        model = init_chat_model(model_setting, api_key=api_key, callbacks=callbacks)
    except (ImportError, ValueError) as exc:
        # An unknown provider, or its integration package not installed in the image. A
        # provider's validation error may echo its input: the key never goes into the message.
        reason = str(exc).replace(api_key, "<MODEL_API_KEY>")
        raise ModelConfigError(f"MODEL={model_setting!r}: {reason}") from None
    return model


def describe_model(model_setting: str) -> str:
    if model_setting == OFFLINE_MODEL_NAME:
        return "offline (deterministic built-in model, no provider, no key)"
    return model_setting
