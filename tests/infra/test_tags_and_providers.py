"""Tags on every taggable resource; every AWS resource through the stack's own providers."""

from __future__ import annotations

import importlib
import inspect
import json
from functools import cache

import pulumi_aws

from infra.config import StackConfig
from infra.tags import REQUIRED_TAG_KEYS
from tools.plan.offline import OfflineRun

COMPONENT_TYPES = {
    f"agent-platform:{concern}:{concern.capitalize()}"
    for concern in (
        "network",
        "cluster",
        "database",
        "cache",
        "registry",
        "backups",
        "identity",
        "release",
    )
} | {
    # The workloads' database logins and their rotation: the database concern, its own
    # component so that the instance's component stays the instance.
    "agent-platform:database:DatabaseLogins"
}
# Only stacks with an `edge` (staging, prod) have its component.
EDGE_COMPONENT = "agent-platform:edge:Edge"


@cache
def _taggable(type_: str) -> bool:
    """Whether the pulumi_aws class behind a type token takes `tags`."""
    _, module_path, class_name = type_.split(":")
    module = importlib.import_module(f"pulumi_aws.{module_path.split('/')[0]}")
    resource_class = getattr(module, class_name)
    return "tags" in inspect.signature(resource_class._internal_init).parameters


def test_the_taggable_check_can_tell_the_difference() -> None:
    assert _taggable("aws:ec2/vpc:Vpc")
    assert not _taggable("aws:kms/alias:Alias")
    assert pulumi_aws.ec2.Vpc is not None


def test_every_taggable_resource_carries_owner_environment_cost_centre(
    run: OfflineRun, config: StackConfig
) -> None:
    checked = 0
    for resource in run.resources:
        if not resource.type.startswith("aws:") or not _taggable(resource.type):
            continue
        tags = resource.inputs.get("tags") or {}
        for key in REQUIRED_TAG_KEYS:
            assert tags.get(key), f"{resource.type} {resource.name} lacks tag {key}"
        assert tags["environment"] == config.environment
        assert tags["owner"] == config.tags.owner
        assert tags["cost-centre"] == config.tags.cost_centre
        checked += 1
    assert checked > 40


def test_providers_apply_the_same_tags_by_default(run: OfflineRun, config: StackConfig) -> None:
    for provider in run.of_type("pulumi:providers:aws"):
        # Provider inputs travel as strings, structured ones as JSON.
        default = json.loads(provider.inputs["defaultTags"])["tags"]
        assert default["environment"] == config.environment
        assert default["cost-centre"] == config.tags.cost_centre
        assert default["owner"] == config.tags.owner


def test_no_aws_resource_uses_an_implicit_default_provider(run: OfflineRun) -> None:
    ours = {p.urn for p in run.of_type("pulumi:providers:aws")}
    for resource in run.resources:
        if resource.type.startswith("aws:"):
            assert resource.provider.rsplit("::", 1)[0] in ours, resource.name


def test_one_component_per_concern_owns_every_resource(run: OfflineRun) -> None:
    expected = COMPONENT_TYPES | ({EDGE_COMPONENT} if run.stack != "dev" else set())
    components = {r.urn: r for r in run.resources if r.type in expected}
    assert {c.type for c in components.values()} == expected
    for resource in run.resources:
        if resource.type in expected or resource.type.startswith("pulumi:providers:aws"):
            continue
        assert resource.parent in components, f"{resource.type} {resource.name} has no component"
