"""Tags: owner, environment and cost-centre on every taggable AWS resource."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, PolicyProviderResource

from policies import tags
from policies.taggable_types import (
    DATA_FILE,
    installed_pulumi_aws,
    package_version,
    render,
    scan,
    taggable_types,
)
from tests.policies.support import check, resource_args, urn

REQUIRED = {"owner": "platform-team", "environment": "prod", "cost-centre": "agent-platform"}


def provider(default_tags: Any) -> PolicyProviderResource:
    type_ = "pulumi:providers:aws"
    props = {"region": "eu-west-1", "defaultTags": default_tags}
    return PolicyProviderResource(type_, props, urn(type_, "aws"), "aws")


def test_the_tag_rule_is_mandatory() -> None:
    assert tags.REQUIRED_TAGS.enforcement_level is EnforcementLevel.MANDATORY


def test_a_tagged_resource_complies() -> None:
    args = resource_args("aws:rds/instance:Instance", {"tags": {**REQUIRED, "Name": "db"}})
    assert check(tags.REQUIRED_TAGS, args) == []


@pytest.mark.parametrize(
    ("resource_tags", "missing"),
    [
        (None, "owner, environment, cost-centre"),
        ({"owner": "platform-team", "environment": "prod"}, "cost-centre"),
        ({**REQUIRED, "owner": ""}, "owner"),
        ({**REQUIRED, "cost_centre": "x", "cost-centre": None}, "cost-centre"),
    ],
    ids=["none", "one-missing", "empty-value", "wrong-spelling"],
)
def test_missing_tags_are_named(resource_tags: dict[str, Any] | None, missing: str) -> None:
    props = {"bucketPrefix": "backups-"} if resource_tags is None else {"tags": resource_tags}
    args = resource_args("aws:s3/bucket:Bucket", props, name="backups")
    assert check(tags.REQUIRED_TAGS, args) == [f"'backups' lacks the tags {missing}."]


@pytest.mark.parametrize(
    "default_tags",
    [json.dumps({"tags": REQUIRED}), {"tags": REQUIRED}],
    ids=["as-the-engine-sends-it", "as-an-object"],
)
def test_the_providers_default_tags_count(default_tags: Any) -> None:
    args = resource_args("aws:kms/key:Key", {}, provider=provider(default_tags))
    assert check(tags.REQUIRED_TAGS, args) == []


def test_a_resource_tag_overrides_a_default_tag() -> None:
    args = resource_args(
        "aws:kms/key:Key", {"tags": {"owner": ""}}, provider=provider({"tags": REQUIRED})
    )
    assert check(tags.REQUIRED_TAGS, args) == ["'subject' lacks the tags owner."]


def test_types_that_take_no_tags_are_not_checked() -> None:
    for type_ in (
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "kubernetes:helm.sh/v3:Release",
        "pulumi:providers:aws",
    ):
        assert check(tags.REQUIRED_TAGS, resource_args(type_, {})) == [], type_


def test_the_required_keys_come_from_config() -> None:
    args = resource_args(
        "aws:ecr/repository:Repository", {"tags": REQUIRED}, config={"requiredTagKeys": ["team"]}
    )
    assert check(tags.REQUIRED_TAGS, args) == ["'subject' lacks the tags team."]


def test_the_taggable_list_covers_the_platforms_resources() -> None:
    types = taggable_types()
    for taggable in (
        "aws:ec2/vpc:Vpc",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:eks/cluster:Cluster",
        "aws:eks/nodeGroup:NodeGroup",
        "aws:rds/instance:Instance",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "aws:ecr/repository:Repository",
        "aws:s3/bucket:Bucket",
        "aws:iam/role:Role",
        "aws:kms/key:Key",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    ):
        assert taggable in types, taggable
    # A list of tag blocks is not a tags map; a bucket's sub-configurations take none.
    assert "aws:autoscaling/group:Group" not in types
    assert "aws:s3/bucketPolicy:BucketPolicy" not in types


def test_the_taggable_list_matches_the_installed_pulumi_aws() -> None:
    package = installed_pulumi_aws()
    expected = render(scan(package), package_version(package))
    assert DATA_FILE.read_text() == expected, (
        "policies/aws_taggable_types.txt is stale: run `uv run python -m policies.taggable_types`"
    )
