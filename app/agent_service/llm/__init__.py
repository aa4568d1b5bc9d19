"""The chat model the graphs use: a provider model from settings, or the offline model."""
