"""The pack's settings: defaults, schemas, and errors that name the setting."""

from __future__ import annotations

from typing import Any

import pytest

from policies import config
from policies.config import PolicyConfigError
from policies.props import stack_of_urn
from policies.registry import ALL_POLICIES


def test_the_defaults_are_the_issues_thresholds() -> None:
    empty: dict[str, Any] = {}
    assert config.integer(empty, "minBackupRetentionDays") == 7
    assert config.strings(empty, "productionStacks") == ("prod",)
    assert config.strings(empty, "devStacks") == ("dev",)
    assert config.strings(empty, "requiredTagKeys") == ("owner", "environment", "cost-centre")
    assert config.integers(empty, "openIngressAllowedPorts") == (443,)
    assert config.integer(empty, "minProductionReplicas") == 3
    assert config.string(empty, "serviceChart") == "langgraph-agent"
    assert config.string(empty, "backupBucketValue") == "config.backupBucket"


def test_a_policy_declares_every_setting_it_reads_with_its_default() -> None:
    schema = config.config_schema("productionStacks", "minBackupRetentionDays")
    assert schema.properties["productionStacks"]["default"] == ["prod"]
    assert schema.properties["productionStacks"]["type"] == "array"
    assert schema.properties["minBackupRetentionDays"]["default"] == 7
    assert schema.properties["minBackupRetentionDays"]["description"]


def test_every_declared_setting_is_a_setting_of_the_pack() -> None:
    for policy in ALL_POLICIES:
        declared = set(policy.config_schema.properties) if policy.config_schema else set()
        assert declared <= set(config.SETTINGS), policy.name


@pytest.mark.parametrize(
    ("key", "value", "reader", "message"),
    [
        ("minBackupRetentionDays", 7.5, config.integer, "must be an integer, got 7.5"),
        ("minBackupRetentionDays", True, config.integer, "must be an integer, got True"),
        ("minProductionReplicas", 0, config.integer, "must be at least 1, got 0"),
        ("productionStacks", "prod", config.strings, "must be a list of non-empty strings"),
        ("productionStacks", ["prod", ""], config.strings, "must be a list of non-empty strings"),
        ("serviceChart", "", config.string, "must be a non-empty string"),
        ("openIngressAllowedPorts", 443, config.integers, "must be a list of integers"),
        (
            "loadBalancerGroupTags",
            {"purpose": 1},
            config.string_map,
            "must be an object of string values",
        ),
    ],
)
def test_a_malformed_value_names_the_setting(
    key: str, value: Any, reader: Any, message: str
) -> None:
    with pytest.raises(PolicyConfigError, match=f"'{key}' {message}"):
        reader({key: value}, key)


def test_protobuf_floats_read_as_integers() -> None:
    assert config.integer({"minBackupRetentionDays": 14.0}, "minBackupRetentionDays") == 14
    assert config.integers({"openIngressAllowedPorts": [443.0]}, "openIngressAllowedPorts") == (
        443,
    )


def test_a_misspelt_setting_is_a_programming_error() -> None:
    with pytest.raises(KeyError, match="'minBackupDays' is not a setting"):
        config.integer({}, "minBackupDays")


@pytest.mark.parametrize(
    ("urn", "stack"),
    [
        ("urn:pulumi:prod::agent-platform::aws:s3/bucket:Bucket::b", "prod"),
        ("urn:pulumi:dev::p::agent-platform:backups:Backups$aws:s3/bucket:Bucket::b", "dev"),
        ("urn:pulumi:::p::t::n", None),
        ("arn:aws:s3:::bucket", None),
    ],
)
def test_the_stack_is_read_from_the_urn(urn: str, stack: str | None) -> None:
    assert stack_of_urn(urn) == stack


def test_production_and_dev_follow_the_configured_lists() -> None:
    prod = "urn:pulumi:prod::p::t::n"
    dev = "urn:pulumi:dev::p::t::n"
    assert config.is_production(prod, {})
    assert not config.is_production(dev, {})
    assert config.is_production(dev, {"productionStacks": ["dev"]})
    assert config.is_dev(dev, {})
    assert not config.is_dev(prod, {})
    assert config.is_production("garbage", {})
    assert not config.is_dev("garbage", {})
