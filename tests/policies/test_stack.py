"""Stack level: a backup bucket wired to the service's release."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, PolicyResource
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from policies import stack
from policies.kubernetes import RELEASE
from tests.policies.support import check_stack, policy_resource

BUCKET = "aws:s3/bucket:Bucket"
CHART = "/repo/charts/langgraph-agent"
NAME = "agent-prod-backups-1a2b3c"


def bucket(name: Any = NAME) -> PolicyResource:
    return policy_resource(BUCKET, "agent-prod-backups", {"bucket": name})


def release(backup_bucket: Any, **kw: Any) -> PolicyResource:
    config = {} if backup_bucket is None else {"backupBucket": backup_bucket}
    props = {"chart": CHART, "values": {"replicaCount": 3, "config": config}}
    return policy_resource(RELEASE, "agent-prod-service", props, **kw)


def addon() -> PolicyResource:
    return policy_resource(RELEASE, "agent-prod-flagger", {"chart": "flagger", "values": {}})


def test_the_rule_is_mandatory() -> None:
    assert stack.BACKUP_BUCKET_WIRED.enforcement_level is EnforcementLevel.MANDATORY


def test_a_release_naming_the_stacks_bucket_complies() -> None:
    assert check_stack(stack.BACKUP_BUCKET_WIRED, [bucket(), addon(), release(NAME)]) == []


def test_in_a_preview_a_dependency_on_the_bucket_is_wiring_enough() -> None:
    target = bucket(UNKNOWN_STRING_VALUE)
    wired = release(UNKNOWN_STRING_VALUE, property_dependencies={"values": [target]})
    assert check_stack(stack.BACKUP_BUCKET_WIRED, [target, wired]) == []


def test_in_a_preview_without_a_dependency_the_rule_cannot_tell() -> None:
    target = bucket(UNKNOWN_STRING_VALUE)
    with pytest.raises(UnknownValueError):
        check_stack(stack.BACKUP_BUCKET_WIRED, [target, release(UNKNOWN_STRING_VALUE)])


def test_a_stack_without_a_bucket_is_reported() -> None:
    reported = check_stack(stack.BACKUP_BUCKET_WIRED, [release(NAME)])
    assert [r.message for r in reported] == [
        "the stack has no S3 bucket for database backups.",
        "release 'agent-prod-service' sends backups to 'agent-prod-backups-1a2b3c', which is "
        "not a bucket of this stack.",
    ]


def test_a_stack_without_the_service_release_is_reported() -> None:
    reported = check_stack(stack.BACKUP_BUCKET_WIRED, [bucket(), addon()])
    assert [(r.message, r.urn) for r in reported] == [
        ("the stack has no Helm release of the 'langgraph-agent' chart to wire backups to.", None)
    ]


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_a_release_without_a_backup_bucket_is_reported(value: Any) -> None:
    service = release(value)
    reported = check_stack(stack.BACKUP_BUCKET_WIRED, [bucket(), service])
    assert [(r.message, r.urn) for r in reported] == [
        (
            "release 'agent-prod-service' sets no config.backupBucket: backups have nowhere to go.",
            service.urn,
        )
    ]


def test_a_release_naming_another_bucket_is_reported() -> None:
    reported = check_stack(stack.BACKUP_BUCKET_WIRED, [bucket(), release("someone-elses")])
    assert len(reported) == 1
    assert "sends backups to 'someone-elses', which is not a bucket" in reported[0].message


def test_the_chart_and_value_path_come_from_config() -> None:
    props = {"chart": "charts/agent", "values": {"backup": {"bucket": NAME}}}
    custom = policy_resource(RELEASE, "svc", props)
    config = {"serviceChart": "agent", "backupBucketValue": "backup.bucket"}
    assert check_stack(stack.BACKUP_BUCKET_WIRED, [bucket(), custom], config) == []
    assert len(check_stack(stack.BACKUP_BUCKET_WIRED, [bucket(), custom])) == 1
