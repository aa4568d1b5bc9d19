"""Credentials: no pod mounts the RDS master secret; the service's user is not the master."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, PolicyResource
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policies import credentials
from policies.kubernetes import RELEASE
from tests.policies.support import check_stack, policy_resource

CHART = "/repo/charts/langgraph-agent"
MASTER = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0a1b2c3d-AbCdEf"
LOGIN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:agent-prod/db-{}-AbCdEf"
HOST = "agent-prod-db.abc.eu-west-1.rds.amazonaws.com"


def database(secret_arn: Any = MASTER, username: str = "agent") -> PolicyResource:
    return policy_resource(
        credentials.RDS_INSTANCE,
        "agent-prod-db",
        {"username": username, "masterUserSecrets": [{"secretArn": secret_arn}]},
    )


def login(workload: str, key: str | None = None) -> list[dict[str, Any]]:
    arn = key or LOGIN.format(workload)
    return [
        {"secretKey": "database_user", "remoteRef": {"key": arn, "property": "username"}},
        {"secretKey": "database_password", "remoteRef": {"key": arn, "property": "password"}},
    ]


def values(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "config": {"databaseUrl": f"postgresql://agent_app@{HOST}:5432/agent"},
        "externalSecrets": {
            "data": login("app"),
            "migration": {"data": login("migrator")},
            "backup": {"data": login("backup")},
            "retention": {"data": login("retention")},
        },
    }
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = base
        for part in parents:
            node = node[part]
        node[last] = value
    return base


def release(release_values: Any) -> PolicyResource:
    return policy_resource(
        RELEASE, "agent-prod-service", {"chart": CHART, "values": release_values}
    )


def test_both_rules_are_mandatory() -> None:
    assert {p.enforcement_level for p in credentials.POLICIES} == {EnforcementLevel.MANDATORY}


@pytest.mark.parametrize("policy", credentials.POLICIES, ids=lambda p: p.name)
def test_own_logins_comply(policy: Any) -> None:
    assert check_stack(policy, [database(), release(values())]) == []


@pytest.mark.parametrize("path", ["data", "migration", "backup", "retention"])
def test_the_master_secret_in_any_workloads_secret_is_reported(path: str) -> None:
    where = "externalSecrets.data" if path == "data" else f"externalSecrets.{path}.data"
    bad = values(**{where: login(path, key=MASTER)})
    reported = check_stack(credentials.NO_MASTER_SECRET_IN_PODS, [database(), release(bad)])
    assert len(reported) == 2  # user and password
    assert all(MASTER in r.message and where in r.message for r in reported)


def test_a_managed_secret_is_known_by_its_name_while_the_instance_is_planned() -> None:
    """In a preview the instance's master secret ARN is unknown; `rds!` still tells."""
    bad = values(**{"externalSecrets.backup.data": login("backup", key=MASTER)})
    planned = database(secret_arn=UNKNOWN_STRING_VALUE)
    reported = check_stack(credentials.NO_MASTER_SECRET_IN_PODS, [planned, release(bad)])
    assert len(reported) == 2


def test_the_master_secret_under_another_name_is_caught_by_its_arn() -> None:
    renamed = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:imported-master-AbCdEf"
    bad = values(**{"externalSecrets.data": login("app", key=renamed)})
    reported = check_stack(
        credentials.NO_MASTER_SECRET_IN_PODS, [database(secret_arn=renamed), release(bad)]
    )
    assert len(reported) == 2


def test_the_master_user_in_the_database_url_is_reported() -> None:
    bad = values(**{"config.databaseUrl": f"postgresql://agent@{HOST}:5432/agent"})
    (reported,) = check_stack(credentials.APP_USER_NOT_MASTER, [database(), release(bad)])
    assert "'agent', the master user of 'agent-prod-db'" in reported.message


def test_other_releases_are_not_read() -> None:
    flagger = policy_resource(
        RELEASE,
        "agent-prod-flagger",
        {"chart": "flagger", "values": {"externalSecrets": {"data": login("x", key=MASTER)}}},
    )
    for policy in credentials.POLICIES:
        assert check_stack(policy, [database(), flagger]) == []
