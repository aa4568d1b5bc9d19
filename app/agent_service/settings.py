"""The service's settings, exactly as docs/service-interface.md lists them.

Non-secret values come from the environment; secrets come from one file per setting in
`SECRETS_DIR` (pydantic-settings' secrets directory), and an environment variable of the same
name wins for local use. Nothing here logs or renders a secret: they are `SecretStr`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, cast

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRETS_DIR = "/run/secrets/agent-service"
MIN_API_KEY_LENGTH = 16


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=False,
        extra="ignore",
        # Secret files are usually written with a trailing newline.
        str_strip_whitespace=True,
        # A validation error must never echo a key or a password back.
        hide_input_in_errors=True,
    )

    host: str = "0.0.0.0"  # noqa: S104 - the pod's address; the chart's NetworkPolicy limits it
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)

    database_url: str | None = None
    database_password: SecretStr | None = None
    database_pool_min: int = Field(default=2, ge=0, le=100)
    database_pool_max: int = Field(default=10, ge=1, le=200)
    # Waiting longer than this for a pooled connection answers 503 instead of hanging.
    database_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    # Recycled connections heal by themselves after a failover or a cloud idle timeout.
    database_pool_max_lifetime_seconds: float = Field(default=1800.0, ge=60)
    database_pool_max_idle_seconds: float = Field(default=300.0, ge=10)
    sqlite_path: Path = Path("/tmp/agent-service/checkpoints.sqlite")  # noqa: S108 - emptyDir

    redis_url: str | None = None
    redis_password: SecretStr | None = None

    api_keys: dict[str, SecretStr] = Field(default_factory=dict)
    # Principals allowed to export or delete another user's data (GDPR requests by an operator).
    admin_principals: str = ""

    model: str = "offline"
    model_api_key: SecretStr | None = None

    rate_limit_per_minute: int = Field(default=120, ge=1)
    request_timeout_seconds: float = Field(default=60.0, gt=0)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    cors_origins: str = ""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    shutdown_grace_seconds: float = Field(default=25.0, ge=0)
    metrics_require_auth: bool = False

    checkpoint_cleanup_days: int = Field(default=90, ge=1)
    backup_bucket: str | None = None
    backup_prefix: str = "postgres/"
    # SSE-KMS key (id or ARN) for backup objects; unset means SSE-S3 (AES256).
    backup_kms_key_id: str | None = None
    # Store items expire after this many days unless read (unset: they never expire).
    store_item_ttl_days: float | None = Field(default=None, gt=0)
    aws_region: str | None = None
    s3_endpoint_url: str | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url", "redis_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql:// (or leave it unset for SQLite)")
        if conninfo_to_dict(value).get("password"):
            raise ValueError(
                "must not contain a password: put it in DATABASE_PASSWORD (secret file "
                "database_password)"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("redis://", "rediss://")):
            raise ValueError("must start with redis:// or rediss:// (or leave it unset)")
        return value

    @field_validator("api_keys")
    @classmethod
    def _api_keys(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        seen: set[str] = set()
        for principal, key in value.items():
            if not principal.strip():
                raise ValueError("a principal name is empty")
            secret = key.get_secret_value()
            if len(secret) < MIN_API_KEY_LENGTH:
                # Name the principal, never the key.
                raise ValueError(
                    f"the key of principal {principal!r} is shorter than "
                    f"{MIN_API_KEY_LENGTH} characters"
                )
            if secret in seen:
                raise ValueError(f"principal {principal!r} shares its key with another one")
            seen.add(secret)
        return value

    @model_validator(mode="after")
    def _pool_bounds(self) -> Settings:
        if self.database_pool_min > self.database_pool_max:
            raise ValueError(
                f"DATABASE_POOL_MIN ({self.database_pool_min}) exceeds "
                f"DATABASE_POOL_MAX ({self.database_pool_max})"
            )
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def admin_principal_set(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.admin_principals.split(",") if p.strip())

    def database_conninfo(self) -> str:
        """The libpq connection string with the password joined in (never log it)."""
        if self.database_url is None:
            raise RuntimeError("DATABASE_URL is not set")
        if self.database_password is None:
            return self.database_url
        return make_conninfo(self.database_url, password=self.database_password.get_secret_value())

    def redis_password_value(self) -> str | None:
        return None if self.redis_password is None else self.redis_password.get_secret_value()


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment and `SECRETS_DIR` (when that directory exists)."""
    secrets_dir = Path(os.environ.get("SECRETS_DIR", DEFAULT_SECRETS_DIR))
    if secrets_dir.is_dir():
        # `_secrets_dir` is pydantic-settings' init-time override, unknown to mypy.
        settings: Settings = cast(Any, Settings)(_secrets_dir=secrets_dir, **overrides)
        return settings
    return Settings(**overrides)
