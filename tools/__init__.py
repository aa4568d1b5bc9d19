"""The programs behind the `make` verbs, one package per verb, and the shared process kit
(`tools.kit`). They may import app, infra and policies; nothing there imports them."""
