"""Settings: environment and secret files as docs/service-interface.md lists them."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_service.settings import load_settings
from pydantic import ValidationError


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in (
        "DATABASE_URL",
        "DATABASE_PASSWORD",
        "API_KEYS",
        "REDIS_URL",
        "REDIS_PASSWORD",
        "MODEL",
        "MODEL_API_KEY",
        "PORT",
        "WORKERS",
        "CORS_ORIGINS",
    ):
        monkeypatch.delenv(name, raising=False)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    monkeypatch.setenv("SECRETS_DIR", str(secrets))
    return secrets


def test_defaults(clean_env: Path) -> None:
    settings = load_settings()
    assert (settings.host, settings.port, settings.workers) == ("0.0.0.0", 8000, 1)
    assert settings.database_url is None
    assert str(settings.sqlite_path) == "/tmp/agent-service/checkpoints.sqlite"
    assert (settings.database_pool_min, settings.database_pool_max) == (2, 10)
    assert settings.model == "offline"
    assert settings.rate_limit_per_minute == 120
    assert settings.request_timeout_seconds == 60
    assert settings.max_body_bytes == 1_048_576
    assert settings.shutdown_grace_seconds == 60
    assert settings.api_keys == {}


def test_secret_files_and_env_precedence(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / "database_password").write_text("from-file\n")
    (clean_env / "api_keys").write_text('{"ops": "ops-key-0123456789abcdef"}\n')
    (clean_env / "redis_password").write_text("redis-token")
    monkeypatch.setenv("DATABASE_URL", "postgresql://agent@db:5432/agent?sslmode=verify-full")
    settings = load_settings()
    assert settings.api_keys["ops"].get_secret_value() == "ops-key-0123456789abcdef"
    conninfo = settings.database_conninfo()
    assert "password=from-file" in conninfo
    assert "sslmode=verify-full" in conninfo
    assert settings.redis_password_value() == "redis-token"
    monkeypatch.setenv("DATABASE_PASSWORD", "from-env")
    assert "password=from-env" in load_settings().database_conninfo()
    # Secrets never show in a repr.
    assert "from-env" not in repr(load_settings())


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DATABASE_URL", "mysql://x", "must start with postgresql://"),
        ("DATABASE_URL", "postgresql://u:pw@h/db", "must not contain a password"),
        ("REDIS_URL", "http://cache", "must start with redis://"),
        ("API_KEYS", '{"a": "short"}', "principal 'a' is shorter than 16"),
        ("API_KEYS", '{"a": "same-key-0123456789", "b": "same-key-0123456789"}', "shares its key"),
        ("PORT", "70000", "less than or equal to 65535"),
        ("DATABASE_POOL_MIN", "20", "exceeds DATABASE_POOL_MAX"),
    ],
)
def test_bad_values_name_the_setting(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        load_settings()
    text = str(caught.value)
    assert message in text
    # Neither keys nor passwords are echoed back.
    assert "same-key-0123456789" not in text
    assert ":pw@" not in text


def test_cors_and_admins_split(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("ADMIN_PRINCIPALS", "ops,dpo")
    settings = load_settings()
    assert settings.cors_origin_list == ["https://a.example", "https://b.example"]
    assert settings.admin_principal_set == {"ops", "dpo"}
