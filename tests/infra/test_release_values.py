"""`build_release_values`: the chart's values from the typed config and resolved outputs."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from agent_service.persistence import roles
from agent_service.settings import Settings, TuningSettings
from pydantic.alias_generators import to_camel

from infra.config import StackConfig
from infra.release_values import ReleaseWiring, build_release_values, wired_settings
from tests.infra.support import STACKS, stack_config

WIRING = ReleaseWiring(
    region="eu-west-1",
    repository_url="123456789012.dkr.ecr.eu-west-1.amazonaws.com/agent-prod/langgraph-agent",
    database_address="agent-prod-db.abc.eu-west-1.rds.amazonaws.com",
    database_port=5432,
    database_name="agent",
    database_login_secret_arns={
        workload: f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:agent-prod/db-{workload}-x"
        for workload in ("migrator", "app", "backup", "retention")
    },
    redis_address="master.agent-prod-cache.abc.euw1.cache.amazonaws.com",
    redis_port=6379,
    redis_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:redis-AbCdEf",
    service_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:service-AbCdEf",
    service_role_arn="arn:aws:iam::123456789012:role/agent-prod-service",
    backup_role_arn="arn:aws:iam::123456789012:role/agent-prod-backup",
    backup_bucket="agent-prod-backups-abc",
    backup_prefix="postgres/",
    backup_key_arn="arn:aws:kms:eu-west-1:123456789012:key/backup",
    private_subnet_cidrs=("10.30.0.0/18", "10.30.64.0/18", "10.30.128.0/18"),
    s3_cidrs=("3.5.64.0/21", "52.218.0.0/17"),
    vpc_cidr="10.30.0.0/16",
)


def _with_settings(config: StackConfig, **changes: Any) -> StackConfig:
    release = config.release
    settings = release.settings.model_copy(update=changes)
    return config.model_copy(update={"release": release.model_copy(update={"settings": settings})})


@pytest.mark.parametrize("stack", STACKS)
def test_values_are_plain_json(stack: str) -> None:
    values = build_release_values(stack_config(stack), WIRING)
    assert json.loads(json.dumps(values)) == values


def test_urls_carry_hosts_and_tls_but_never_a_password() -> None:
    values = build_release_values(stack_config("prod"), WIRING)
    database = urlsplit(values["config"]["databaseUrl"])
    assert (database.hostname, database.port, database.password) == (
        WIRING.database_address,
        5432,
        None,
    )
    assert parse_qs(database.query)["sslmode"] == ["verify-full"]
    redis = urlsplit(values["config"]["redisUrl"])
    assert (redis.scheme, redis.hostname, redis.port) == ("rediss", WIRING.redis_address, 6379)


def test_each_workload_logs_in_as_its_own_role_never_the_master() -> None:
    values = build_release_values(stack_config("prod"), WIRING)
    assert urlsplit(values["config"]["databaseUrl"]).username == roles.APP
    secrets = values["externalSecrets"]
    assert secrets["refreshInterval"] == "5m"
    for owner, workload in (
        (secrets, "app"),
        (secrets["migration"], "migrator"),
        (secrets["backup"], "backup"),
        (secrets["retention"], "retention"),
    ):
        login = {
            d["secretKey"]: d["remoteRef"]
            for d in owner["data"]
            if d["secretKey"].startswith("database_")
        }
        arn = WIRING.database_login_secret_arns[workload]
        assert login == {
            "database_user": {"key": arn, "property": "username"},
            "database_password": {"key": arn, "property": "password"},
        }
    every_key = [d["remoteRef"]["key"] for d in secrets["data"]] + [
        d["remoteRef"]["key"]
        for job in ("migration", "backup", "retention")
        for d in secrets[job]["data"]
    ]
    assert not [key for key in every_key if ":secret:rds!" in key]


def test_a_hosted_model_gets_its_key_and_egress_on_443() -> None:
    config = _with_settings(stack_config("prod"), model="anthropic:claude-sonnet-4-5")
    values = build_release_values(config, WIRING)
    refs = {d["secretKey"]: d["remoteRef"] for d in values["externalSecrets"]["data"]}
    assert refs["model_api_key"] == {"key": WIRING.service_secret_arn, "property": "model_api_key"}
    egress = values["networkPolicy"]["egress"]["modelProvider"]
    assert egress == {"cidrs": ["0.0.0.0/0"], "port": 443}
    assert values["config"]["model"] == "anthropic:claude-sonnet-4-5"


def test_the_offline_model_opens_no_egress() -> None:
    values = build_release_values(stack_config("prod"), WIRING)
    assert values["networkPolicy"]["egress"]["modelProvider"]["cidrs"] == []
    keys = [d["secretKey"] for d in values["externalSecrets"]["data"]]
    assert keys == [
        "database_user",
        "database_password",
        "redis_username",
        "redis_password",
        "api_keys",
    ]


def test_a_digest_pins_the_image() -> None:
    config = stack_config("prod")
    image = config.release.image.model_copy(update={"digest": "sha256:" + "a" * 64})
    config = config.model_copy(
        update={"release": config.release.model_copy(update={"image": image})}
    )
    values = build_release_values(config, WIRING)
    assert values["image"]["digest"] == "sha256:" + "a" * 64
    assert values["image"]["repository"] == WIRING.repository_url
    assert "digest" not in build_release_values(stack_config("prod"), WIRING)["image"]


def test_cors_origins_and_settings_reach_the_config_block() -> None:
    config = _with_settings(
        stack_config("staging"),
        cors_origins="https://a.example,https://b.example",
        rate_limit_per_minute=30,
    )
    settings = build_release_values(config, WIRING)["config"]
    assert settings["corsOrigins"] == "https://a.example,https://b.example"
    assert settings["rateLimitPerMinute"] == 30
    assert settings["backupBucket"] == WIRING.backup_bucket
    assert settings["awsRegion"] == "eu-west-1"


def test_the_config_block_is_the_stacks_settings_plus_the_wiring() -> None:
    """Keys are the service's setting names in camelCase; every tuned setting is passed on with
    the service's default when the stack leaves it out, and the wiring names real settings."""
    config = stack_config("prod")
    values = build_release_values(config, WIRING)["config"]
    tuned = {to_camel(name) for name in TuningSettings.model_fields}
    wired = {to_camel(name) for name in wired_settings(config, WIRING)}
    left = {"storeItemTtlDays", "storeEmbeddingDims"}  # None: left to the service
    assert tuned - set(values) == left
    assert set(values) == (tuned - left) | wired
    assert set(wired_settings(config, WIRING)) <= set(Settings.model_fields)
    assert not tuned & wired
    default = Settings.model_fields["request_timeout_seconds"].default
    assert values["requestTimeoutSeconds"] == default
