"""The service's settings: the one source of each setting's name, type, bounds, default and
doc line.

Everything else is derived from this module: the chart's `config` values, their JSON schema
and the settings table of docs/service-interface.md are generated from it (`make generate`),
the chart turns each values key back into the variable's name, and the Pulumi program
validates a stack's `release.settings` with `TuningSettings` below.

Non-secret values come from the environment; secrets come from one file per setting in
`SECRETS_DIR` (pydantic-settings' secrets directory), and an environment variable of the same
name wins for local use. Nothing here logs or renders a secret: they are `SecretStr`.

This module imports only pydantic and pydantic-settings (psycopg lazily), so that the Pulumi
program and the generators can import it without the service's runtime.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRETS_DIR = "/run/secrets/agent-service"
MIN_API_KEY_LENGTH = 16
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

# The JSON-schema form of the URL validators below, for the chart (its schema cannot call them).
_DATABASE_URL_SCHEMA: dict[str, Any] = {
    "pattern": r"^postgres(ql)?://[^:@/\s]+@[^\s]+$",
    "not": {"pattern": "[?&]password="},
}
_REDIS_URL_SCHEMA: dict[str, Any] = {
    "pattern": r"^rediss?://[^:@\s]*@?[^:@\s]+(:[0-9]+)?(/[0-9]+)?$",
}
_ORIGIN = r"https?://[^/,\s]+"
# A principal's name labels its store namespaces, where a "." is not allowed.
_PRINCIPAL = r"[A-Za-z0-9_@-]{1,64}"
# A webhook host: a DNS name (optionally `*.` for its subdomains) or an IP literal.
_WEBHOOK_HOST = r"(?:(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
PRINCIPAL_NAME = re.compile(_PRINCIPAL)
Role = Literal["user", "approver", "admin"]


def _comma_list(pattern: str) -> str:
    """A comma-separated list of `pattern`, or empty."""
    return rf"^$|^{pattern}(\s*,\s*{pattern})*$"


class GraphOptions(BaseModel):
    """Tuning of the graphs: the group of settings `create_app` hands to the graph registry."""

    model_config = ConfigDict(frozen=True)

    model: Annotated[str, Field(pattern=r"^offline$|^[A-Za-z0-9_-]+:.+$")] = Field(
        default="offline",
        description="`offline` (no model provider) or `provider:model` for init_chat_model",
    )
    user_model_calls_per_day: int = Field(
        default=1000, ge=1, description="model calls per user per UTC day, across threads"
    )
    summarize_after_messages: int = Field(
        default=40, ge=4, description="main_agent summarises the history past this many messages"
    )
    summarize_keep_messages: int = Field(
        default=10, ge=2, description="messages main_agent keeps verbatim when it summarises"
    )
    research_max_tasks: int = Field(
        default=8, ge=1, le=64, description="upper bound of research_agent's parallel tasks"
    )
    research_worker_timeout_seconds: float = Field(
        default=20.0, gt=0, description="seconds one attempt of a research task may take"
    )
    research_worker_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="attempts per research task on transient errors and timeouts",
    )
    research_cache_ttl_seconds: int = Field(
        default=3600, ge=1, description="seconds a finished research task is reused from the cache"
    )


class TuningSettings(GraphOptions):
    """What a deployment tunes: neither a secret, nor wiring to other resources (URLs, bucket,
    region), nor fixed by the image or the pod. A stack's `release.settings` is exactly this."""

    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes")
    database_pool_min: int = Field(
        default=2, ge=0, le=100, description="database connections per worker process: minimum"
    )
    database_pool_max: int = Field(
        default=10, ge=1, le=200, description="database connections per worker process: maximum"
    )
    database_pool_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="wait for a pooled connection (and connect timeout); past it the request "
        "answers 503",
    )
    database_pool_max_lifetime_seconds: float = Field(
        default=1800.0,
        ge=60,
        description="a pooled connection is replaced after this long, so connections heal after "
        "a failover",
    )
    database_pool_max_idle_seconds: float = Field(
        default=300.0,
        ge=10,
        description="an idle pooled connection is closed after this long, below the cloud's "
        "idle cut",
    )
    rate_limit_per_minute: int = Field(
        default=120, ge=1, description="requests per principal per minute"
    )
    request_timeout_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="a run past this answers 504 and stays resumable"
    )
    run_workers: int = Field(
        default=2,
        ge=0,
        le=64,
        description="background runs each API process executes at once; 0 leaves them to "
        "`agent-service worker` processes",
    )
    run_queue_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        le=10,
        description="how often an idle worker looks for a queued run another process stored",
    )
    background_run_timeout_seconds: float = Field(
        default=3600.0, gt=0, le=86400, description="a background run past this ends as timeout"
    )
    run_lease_seconds: float = Field(
        default=15.0,
        ge=1,
        le=600,
        description="a run's hold on its thread, renewed while it lives; after a crash, "
        "another worker resumes the run once this has run out",
    )
    max_active_runs_per_principal: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="background runs (pending, delayed or running) one principal may have at "
        "once; more answer 429, so one principal cannot fill the shared queue",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="larger request bodies answer 413"
    )
    cors_origins: Annotated[str, Field(pattern=_comma_list(_ORIGIN))] = Field(
        default="", description="comma-separated allowed CORS origins; empty allows none"
    )
    admin_principals: Annotated[str, Field(pattern=_comma_list(_PRINCIPAL))] = Field(
        default="",
        description="comma-separated principals allowed to export or delete another user's data",
    )
    principal_roles: dict[str, list[Role]] = Field(
        default_factory=dict,
        description='JSON object `{"<principal>": ["user", "approver", "admin"], ...}`; a '
        "principal not listed is a `user` (docs/security.md)",
    )
    principal_graphs: dict[str, list[str]] = Field(
        default_factory=dict,
        description='JSON object `{"<principal>": ["<graph id>", ...]}`: the graphs a principal '
        "may use; a principal not listed may use every graph",
    )
    max_url_chars: int = Field(
        default=4096,
        ge=256,
        le=65536,
        description="longer request URLs (path and query) answer 414 before any other work",
    )
    auth_failures_per_minute: int = Field(
        default=30,
        ge=1,
        description="failed authentications per client address per minute; more answer 429",
    )
    log_level: LogLevel = Field(default="INFO", description="level of the JSON logs on stdout")
    shutdown_grace_seconds: float = Field(
        # As long as a run may last (REQUEST_TIMEOUT_SECONDS), so that a rollout or a
        # scale-down lets running runs finish; the chart checks the two against each other.
        default=60.0,
        ge=0,
        le=3600,
        description="drain time after SIGTERM",
    )
    metrics_require_auth: bool = Field(
        default=False, description="`true` puts /metrics behind X-API-Key"
    )
    checkpoint_cleanup_days: int = Field(
        default=90, ge=1, description="threads older than this many days are deleted by retention"
    )
    store_item_ttl_days: float | None = Field(
        default=None,
        gt=0,
        description="store items expire this many days after their last read or write and "
        "retention sweeps them; unset: never",
    )
    store_embeddings: Annotated[str, Field(pattern=r"^local$|^none$|^[A-Za-z0-9_-]+:.+$")] = Field(
        default="local",
        description="embeddings of the store's semantic search: `local` (all-MiniLM-L6-v2 "
        "in the image, no network), `provider:model` for LangChain's init_embeddings (its "
        "provider package installed), or `none` (search without `query` only)",
    )
    store_embedding_dims: int | None = Field(
        default=None,
        ge=1,
        le=16000,
        description="dimensions of STORE_EMBEDDINGS' vectors: required for `provider:model`, "
        "ignored otherwise (`local` is 384); the migration creates the vector column with it",
    )

    webhook_allowed_hosts: Annotated[str, Field(pattern=_comma_list(_WEBHOOK_HOST))] = Field(
        default="",
        description="comma-separated hosts a run's or a cron's `webhook` may call "
        "(`hooks.example.com`, `*.example.com` for its subdomains); empty refuses every webhook",
    )
    webhook_allow_http: bool = Field(
        default=False, description="`true` lets webhooks use plain http:// (else https:// only)"
    )
    webhook_allow_private_networks: bool = Field(
        default=False,
        description="`true` lets webhooks reach private and loopback addresses; link-local "
        "(the cloud metadata endpoint), multicast and unspecified addresses stay refused",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="seconds one webhook delivery attempt may take"
    )
    webhook_max_attempts: int = Field(
        default=5,
        ge=1,
        le=10,
        description="attempts per webhook delivery on 5xx answers, timeouts and connection errors",
    )
    webhook_retry_initial_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="first retry delay of a webhook; doubles per attempt, with full jitter",
    )
    webhook_max_seconds: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="a webhook delivery gives up after this many seconds, attempts included",
    )

    cron_min_interval_seconds: int = Field(
        default=60,
        ge=60,
        le=86400,
        description="a cron schedule firing more often than this answers 422",
    )
    cron_max_per_principal: int = Field(
        default=100, ge=1, le=100_000, description="crons one principal may have at once"
    )
    cron_scheduler: bool = Field(
        default=True,
        description="`true` fires due crons from this process; each firing runs once across "
        "replicas (a conditional update claims it)",
    )
    cron_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="how often the scheduler looks for due crons (a firing is at most this late)",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _pool_bounds(self) -> TuningSettings:
        if self.database_pool_min > self.database_pool_max:
            raise ValueError(
                f"DATABASE_POOL_MIN ({self.database_pool_min}) exceeds "
                f"DATABASE_POOL_MAX ({self.database_pool_max})"
            )
        return self

    @model_validator(mode="after")
    def _embedding_dims(self) -> TuningSettings:
        provider = self.store_embeddings not in ("local", "none")
        if provider and self.store_embedding_dims is None:
            raise ValueError(
                f"STORE_EMBEDDINGS={self.store_embeddings!r} needs STORE_EMBEDDING_DIMS (the "
                "provider model's vector size)"
            )
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def webhook_host_list(self) -> list[str]:
        return [h.strip().lower() for h in self.webhook_allowed_hosts.split(",") if h.strip()]

    @property
    def admin_principal_set(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.admin_principals.split(",") if p.strip())

    def graph_options(self) -> GraphOptions:
        """The graphs' group of these settings."""
        return GraphOptions.model_validate(
            {name: getattr(self, name) for name in GraphOptions.model_fields}
        )


class _SecretsDir(BaseSettings):
    """Read first: where the other settings' secret files are."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    secrets_dir: Path = Path(DEFAULT_SECRETS_DIR)


class Settings(BaseSettings, TuningSettings):
    model_config = SettingsConfigDict(
        case_sensitive=False,
        extra="ignore",
        frozen=False,
        # Secret files are usually written with a trailing newline.
        str_strip_whitespace=True,
        # A validation error must never echo a key or a password back.
        hide_input_in_errors=True,
    )

    host: str = Field(
        default="0.0.0.0",  # noqa: S104 - the pod's address; the chart's NetworkPolicy limits it
        description="listen address",
    )
    port: int = Field(default=8000, ge=1, le=65535, description="listen port")
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="port of a separate /metrics listener (the chart sets 9464, which its "
        "Ingress never routes); 0 serves /metrics on PORT",
    )
    secrets_dir: Path = Field(
        default=Path(DEFAULT_SECRETS_DIR),
        description="directory of the secret files, one per secret setting, named in lower case",
    )

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL without the password, e.g. "
        "`postgresql://agent@db:5432/agent?sslmode=verify-full`; unset: embedded SQLite",
        json_schema_extra=_DATABASE_URL_SCHEMA,
    )
    # A secret file like the password: the rotation owns user and password together.
    database_user: SecretStr | None = Field(
        default=None,
        description="login role, in place of DATABASE_URL's user; re-read per connection "
        "(alternating-users rotation switches it)",
    )
    database_password: SecretStr | None = Field(
        default=None,
        description="joined with DATABASE_URL; re-read per connection, so a rotated password "
        "needs no restart",
    )
    sqlite_path: Path = Field(
        default=Path("/tmp/agent-service/checkpoints.sqlite"),  # noqa: S108 - emptyDir
        description="the embedded database when DATABASE_URL is unset",
    )

    redis_url: str | None = Field(
        default=None,
        description="`redis://` or `rediss://` (TLS) URL without the password; unset: "
        "in-process cache and rate limits",
        json_schema_extra=_REDIS_URL_SCHEMA,
    )
    redis_username: SecretStr | None = Field(
        default=None,
        description="Redis ACL / ElastiCache RBAC user; unset: the `default` user; re-read per "
        "connection",
    )
    redis_password: SecretStr | None = Field(
        default=None,
        description="the Redis user's password; re-read per connection, so a rotated password "
        "needs no restart",
    )

    api_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='JSON object `{"<principal>": "<key>", ...}`; keys of 16+ characters, one '
        "per principal; none configured: every API request answers 401",
    )
    model_api_key: SecretStr | None = Field(default=None, description="the model provider's key")
    langsmith_api_key: SecretStr | None = Field(
        default=None,
        description="LangSmith key: when set, runs are traced to LangSmith (LANGSMITH_TRACING)",
    )
    webhook_signing_secret: SecretStr | None = Field(
        default=None,
        description="key of the HMAC-SHA256 signature on every webhook delivery (16+ "
        "characters); its file is re-read per delivery, so a rotation needs no restart; unset: "
        "webhooks are refused",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="OTLP/gRPC collector URL, e.g. `http://otel-collector:4317`: when set, HTTP "
        "requests and graph runs are traced with OpenTelemetry; unset: no tracing",
    )

    backup_bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] | None = (
        Field(default=None, description="S3 bucket the backups go to")
    )
    backup_prefix: str = Field(default="postgres/", description="key prefix of the backups")
    backup_kms_key_id: (
        Annotated[
            str,
            Field(
                pattern=r"^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/.+|alias/.+"
                r"|[a-f0-9-]{36}|mrk-[a-f0-9]{32})$"
            ),
        ]
        | None
    ) = Field(
        default=None,
        description="SSE-KMS key (id, alias or ARN) of the backup objects; unset: SSE-S3 (AES256)",
    )
    aws_region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")] | None = Field(
        default=None, description="the backup bucket's region"
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="an S3-compatible endpoint (loopback in tests)"
    )
    pg_bin_dir: Path | None = Field(
        default=None, description="where pg_dump / pg_restore are, when not on PATH"
    )
    prometheus_multiproc_dir: Path | None = Field(
        default=None,
        description="where the workers' metric samples meet, emptied at start; "
        "`/tmp/agent-service/prometheus` when WORKERS > 1",
    )

    @field_validator(
        "database_url", "redis_url", "backup_bucket", "backup_kms_key_id", "aws_region",
        "s3_endpoint_url", "pg_bin_dir", "prometheus_multiproc_dir", "database_user",
        "redis_username", "otel_exporter_otlp_endpoint", "webhook_signing_secret",
        mode="before",
    )  # fmt: skip
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
        from psycopg.conninfo import conninfo_to_dict  # here: infra imports this module

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
            if not PRINCIPAL_NAME.fullmatch(principal):
                # The name labels the user's store namespaces, where a "." is not allowed.
                raise ValueError(
                    f"principal {principal[:80]!r} is not a valid name: use 1-64 letters, "
                    "digits, '_', '-' or '@'"
                )
            # Whitespace around a key is never part of it (see auth.api_keys).
            secret = key.get_secret_value().strip()
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

    @field_validator("webhook_signing_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_API_KEY_LENGTH:
            raise ValueError(f"must be at least {MIN_API_KEY_LENGTH} characters")
        return value

    @model_validator(mode="after")
    def _known_principals(self) -> Settings:
        for name, listed in (
            ("PRINCIPAL_ROLES", self.principal_roles),
            ("PRINCIPAL_GRAPHS", self.principal_graphs),
        ):
            unknown = sorted(set(listed) - set(self.api_keys))
            if unknown:
                raise ValueError(f"{name} names principals without an API key: {unknown}")
        return self

    def database_conninfo(self) -> str:
        """The libpq connection string with the user and password joined in (never log it):
        the values read at start-up; the service's pool reads them again per connection."""
        if self.database_url is None:
            raise RuntimeError("DATABASE_URL is not set")
        joined: dict[str, str] = {}
        if self.database_user is not None:
            joined["user"] = self.database_user.get_secret_value()
        if self.database_password is not None:
            joined["password"] = self.database_password.get_secret_value()
        if not joined:
            return self.database_url
        from psycopg.conninfo import make_conninfo  # here: infra imports this module

        return make_conninfo(self.database_url, **joined)

    def redis_password_value(self) -> str | None:
        return None if self.redis_password is None else self.redis_password.get_secret_value()


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment and `SECRETS_DIR` (when that directory exists)."""
    secrets_dir = _SecretsDir().secrets_dir
    if secrets_dir.is_dir():
        # `_secrets_dir` is pydantic-settings' init-time override, unknown to mypy.
        settings: Settings = cast(Any, Settings)(_secrets_dir=secrets_dir, **overrides)
        return settings
    return Settings(**overrides)
