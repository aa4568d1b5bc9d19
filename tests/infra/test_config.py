"""The stack config: read once, typed, and a wrong or missing key named with its stack file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from agent_service.settings import TuningSettings
from annotated_types import Le
from pydantic.alias_generators import to_camel

from infra.config import ServiceSettings, StackConfigError, parse_stack_config
from tests.infra.support import STACKS
from tools.plan.offline import run_offline, stack_config_values


def _values(stack: str) -> dict[str, str]:
    values, _ = stack_config_values(stack)
    return values


def _with_block(values: dict[str, str], key: str, **changes: Any) -> dict[str, str]:
    block = json.loads(values[key])
    for name, value in changes.items():
        if value is None:
            del block[name]
        else:
            block[name] = value
    return {**values, key: json.dumps(block)}


def _error(stack: str, values: dict[str, str]) -> str:
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config(stack, values)
    return str(caught.value)


@pytest.mark.parametrize("stack", STACKS)
def test_each_committed_stack_file_is_valid(stack: str) -> None:
    config = parse_stack_config(stack, _values(stack))
    assert config.environment == stack
    assert config.stack_file == f"Pulumi.{stack}.yaml"
    assert config.region == "eu-west-1"


@pytest.mark.parametrize("stack", STACKS)
def test_a_missing_block_is_named_with_the_stack_file(stack: str) -> None:
    values = _values(stack)
    del values["agent-platform:database"]
    message = _error(stack, values)
    assert message.startswith(f"Pulumi.{stack}.yaml:")
    assert "agent-platform:database is missing" in message


def test_a_missing_nested_key_is_named_by_its_path() -> None:
    values = _with_block(_values("prod"), "agent-platform:database", multiAz=None)
    message = _error("prod", values)
    assert "Pulumi.prod.yaml" in message
    assert "agent-platform:database.multiAz is missing" in message


def test_a_missing_region_is_named() -> None:
    values = _values("staging")
    del values["aws:region"]
    assert "Pulumi.staging.yaml: aws:region is missing" in _error("staging", values)


@pytest.mark.parametrize(
    ("block", "key", "value"),
    [
        ("agent-platform:database", "backupRetentionDays", "seven"),
        ("agent-platform:database", "multiAz", "sometimes"),
        ("agent-platform:cache", "numCacheClusters", 2.5),
        ("agent-platform:network", "cidr", "10.0.0.0/33"),
        ("agent-platform:release", "replicas", [3]),
    ],
)
def test_a_wrong_type_is_named_with_key_and_file(block: str, key: str, value: Any) -> None:
    values = _with_block(_values("dev"), block, **{key: value})
    message = _error("dev", values)
    assert message.startswith("Pulumi.dev.yaml:")
    assert f"{block}.{key}" in message
    assert repr(value) in message


def test_a_wrong_top_level_scalar_is_named() -> None:
    values = {**_values("dev"), "agent-platform:environment": "qa"}
    message = _error("dev", values)
    assert "Pulumi.dev.yaml: agent-platform:environment" in message
    assert "'qa'" in message


def test_an_unknown_key_is_named_not_ignored() -> None:
    values = {**_values("dev"), "agent-platform:databse": "{}"}
    message = _error("dev", values)
    assert "agent-platform:databse is not a known key" in message


def test_an_unknown_nested_key_is_named_not_ignored() -> None:
    values = _with_block(_values("dev"), "agent-platform:database", multiAZ=True)
    assert "agent-platform:database.multiAZ is not a known key" in _error("dev", values)


def test_every_problem_is_listed_at_once() -> None:
    values = _with_block(_values("dev"), "agent-platform:cache", nodeType=None, multiAz=None)
    message = _error("dev", values)
    assert "agent-platform:cache.nodeType is missing" in message
    assert "agent-platform:cache.multiAz is missing" in message


@pytest.mark.parametrize(
    ("block", "changes", "expected"),
    [
        ("agent-platform:cache", {"numCacheClusters": 1, "multiAz": True}, "numCacheClusters"),
        ("agent-platform:release", {"image": {"tag": "latest"}}, "immutable"),
        (
            "agent-platform:cluster",
            {"endpointAccess": {"mode": "publicCidrs", "publicCidrs": ["0.0.0.0/0"]}},
            "internet",
        ),
        # B1: a public endpoint open to nobody would lock the deployer out.
        ("agent-platform:cluster", {"endpointAccess": {"mode": "publicCidrs"}}, "publicCidrs"),
        (
            "agent-platform:cluster",
            {"endpointAccess": {"mode": "inVpc", "runnerCidrs": ["10.99.0.0/24"]}},
            "outside",
        ),
        # B2: an ARN copied from AWS's documentation is nobody's admin.
        (
            "agent-platform:cluster",
            {"adminRoleArns": ["arn:aws:iam::111122223333:role/platform-admin"]},
            "documentation",
        ),
        ("agent-platform:network", {"cidr": "10.0.0.0/24"}, "/16 to /20"),
        ("agent-platform:database", {"engineVersion": "15.4"}, "engineVersion"),
        ("agent-platform:database", {"maxAllocatedStorageGb": 20, "allocatedStorageGb": 50}, ""),
        ("agent-platform:network", {"flowLogRetentionDays": 10}, "CloudWatch"),
    ],
)
def test_inconsistent_values_are_refused(
    block: str, changes: dict[str, Any], expected: str
) -> None:
    values = _with_block(_values("prod"), block, **changes)
    message = _error("prod", values)
    assert message.startswith("Pulumi.prod.yaml:")
    assert block in message
    assert expected in message


def test_node_group_sizes_must_be_ordered() -> None:
    cluster = json.loads(_values("dev")["agent-platform:cluster"])
    cluster["nodeGroups"][0].update(minSize=3, desiredSize=2)
    values = {**_values("dev"), "agent-platform:cluster": json.dumps(cluster)}
    message = _error("dev", values)
    assert "agent-platform:cluster.nodeGroups[0]" in message
    assert "minSize <= desiredSize <= maxSize" in message


def test_the_program_stops_on_bad_config_before_declaring_resources() -> None:
    """End to end: `pulumi up` reads the config through the Pulumi runtime."""
    values = _with_block(_values("prod"), "agent-platform:database", backupRetentionDays="x")
    with pytest.raises(StackConfigError) as caught:
        run_offline("prod", config=values)
    message = str(caught.value)
    assert message.startswith("Pulumi.prod.yaml:")
    assert "agent-platform:database.backupRetentionDays" in message


def test_defaults_fill_what_stacks_do_not_differ_in() -> None:
    config = parse_stack_config("dev", _values("dev"))
    assert config.backups.expire_after_days == 30
    assert config.backups.prefix == "postgres/"
    assert config.database.engine_version == "16"
    assert config.release.settings.model == "offline"


@pytest.mark.parametrize(
    ("addon", "feature"),
    [
        ("flagger", "canary"),
        ("prometheus", "monitoring"),
        ("metricsServer", "autoscaling"),
    ],
)
def test_a_release_feature_needs_its_addon(addon: str, feature: str) -> None:
    values = _with_block(_values("prod"), "agent-platform:platformAddons", **{addon: False})
    message = _error("prod", values)
    assert message.startswith("Pulumi.prod.yaml:")
    assert f"agent-platform:release.{feature} needs agent-platform:platformAddons.{addon}" in (
        message
    )


def test_a_canary_needs_the_edge_and_autoscaling() -> None:
    values = {k: v for k, v in _values("prod").items() if k != "agent-platform:edge"}
    assert "agent-platform:release.canary needs agent-platform:edge" in _error("prod", values)
    release = json.loads(_values("prod")["agent-platform:release"])
    release["autoscaling"]["enabled"] = False
    values = {**_values("prod"), "agent-platform:release": json.dumps(release)}
    assert "canary needs autoscaling.enabled" in _error("prod", values)


def test_stack_settings_are_the_services_tuning_settings() -> None:
    """Same fields, bounds and defaults as the service's model: no copy to drift."""
    assert ServiceSettings.model_fields.keys() == TuningSettings.model_fields.keys()
    for name, field in TuningSettings.model_fields.items():
        stack_field = ServiceSettings.model_fields[name]
        assert stack_field.metadata == field.metadata, name
        assert stack_field.default == field.default, name
        assert stack_field.alias == to_camel(name)


def _le(name: str) -> Any:
    (bound,) = [m.le for m in TuningSettings.model_fields[name].metadata if isinstance(m, Le)]
    return bound


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        (
            "requestTimeoutSeconds",
            _le("request_timeout_seconds") + 1,
            f"less than or equal to {_le('request_timeout_seconds')}",
        ),
        ("requestTimeoutSeconds", 0, "greater than 0"),
        ("logLevel", "LOUD", "'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"),
        ("corsOrigins", "agent.example.com", "should match pattern"),
        ("databasePoolMin", 50, "DATABASE_POOL_MIN (50) exceeds DATABASE_POOL_MAX (10)"),
        (
            "researchMaxTasks",
            _le("research_max_tasks") + 1,
            f"less than or equal to {_le('research_max_tasks')}",
        ),
    ],
)
def test_stack_settings_are_checked_with_the_services_bounds(
    key: str, value: Any, problem: str
) -> None:
    values = _values("staging")
    release = json.loads(values["agent-platform:release"])
    release.setdefault("settings", {})[key] = value
    message = _error("staging", {**values, "agent-platform:release": json.dumps(release)})
    assert message.startswith("Pulumi.staging.yaml:")
    assert "agent-platform:release.settings" in message
    assert problem in message


def test_critical_is_a_log_level_on_both_sides() -> None:
    values = _values("dev")
    release = json.loads(values["agent-platform:release"])
    release["settings"] = {"logLevel": "CRITICAL", "requestTimeoutSeconds": 1.5}
    config = parse_stack_config("dev", {**values, "agent-platform:release": json.dumps(release)})
    assert config.release.settings.log_level == "CRITICAL"
    assert config.release.settings.request_timeout_seconds == 1.5


def test_the_endpoint_access_mode_is_required() -> None:
    values = _with_block(_values("dev"), "agent-platform:cluster", endpointAccess=None)
    assert "agent-platform:cluster.endpointAccess is missing" in _error("dev", values)


@pytest.mark.parametrize("stack", STACKS)
def test_no_stack_file_names_a_documentation_account(stack: str) -> None:
    from infra.config import DOCUMENTATION_ACCOUNTS

    text = (Path(__file__).resolve().parents[2] / f"Pulumi.{stack}.yaml").read_text()
    assert not [account for account in DOCUMENTATION_ACCOUNTS if account in text]


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_states_a_monthly_budget(stack: str) -> None:
    config = parse_stack_config(stack, _values(stack))
    assert config.cost is not None
    assert config.cost.monthly_budget_usd > 0
    assert config.cost.enforce is False  # advisory unless a stack asks for a hard stop


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"monthlyBudgetUsd": -5}, "agent-platform:cost.monthlyBudgetUsd is invalid"),
        ({"monthlyBudgetUsd": "lots"}, "agent-platform:cost.monthlyBudgetUsd is invalid"),
        ({"monthlyBudgetUsd": None}, "agent-platform:cost.monthlyBudgetUsd is missing"),
        ({"enforce": "sometimes"}, "agent-platform:cost.enforce is invalid"),
        ({"budget": 100}, "agent-platform:cost.budget is not a known key"),
    ],
)
def test_a_wrong_budget_is_named_with_key_and_file(changes: dict[str, Any], expected: str) -> None:
    values = _with_block(_values("staging"), "agent-platform:cost", **changes)
    message = _error("staging", values)
    assert message.startswith("Pulumi.staging.yaml:")
    assert expected in message


def test_ingress_nginx_is_no_longer_an_addon() -> None:
    values = _with_block(_values("prod"), "agent-platform:platformAddons", ingressNginx=True)
    assert "agent-platform:platformAddons.ingressNginx is not a known key" in _error("prod", values)


def test_the_edge_host_lies_in_its_hosted_zone() -> None:
    values = _with_block(_values("prod"), "agent-platform:edge", hostedZone="example.org")
    message = _error("prod", values)
    assert message.startswith("Pulumi.prod.yaml: agent-platform:edge is invalid:")
    assert (
        "agent-platform:edge.host 'agent.example.com' is not in agent-platform:edge.hostedZone"
        in (message)
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"sourceRanges": []}, "agent-platform:edge.sourceRanges is invalid"),
        ({"sourceRanges": None}, "agent-platform:edge.sourceRanges is missing"),
        ({"sourceRanges": ["10.0.0.1/8"]}, "agent-platform:edge.sourceRanges[0] is invalid"),
        ({"hostedZone": None}, "agent-platform:edge.hostedZone is missing"),
        ({"hostedZone": "Example.COM"}, "agent-platform:edge.hostedZone is invalid"),
        ({"host": "https://agent.example.com"}, "agent-platform:edge.host is invalid"),
        ({"tlsCertificate": "agent-tls"}, "agent-platform:edge.tlsCertificate is not a known key"),
    ],
)
def test_edge_keys_are_typed(change: dict[str, Any], expected: str) -> None:
    values = _with_block(_values("staging"), "agent-platform:edge", **change)
    message = _error("staging", values)
    assert message.startswith("Pulumi.staging.yaml:")
    assert expected in message
