"""The service's Helm release: production replicas, PDB and canary; resources; pinned image."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel

from policies import kubernetes
from tests.policies.support import check, resource_args

CHART = "/srv/agent-platform/charts/langgraph-agent"
PROD_VALUES: dict[str, Any] = {
    "image": {
        "repository": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/agent",
        "tag": "0.1.0",
        "digest": "sha256:" + "ab" * 32,
    },
    "replicaCount": 3,
    "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 10},
    "podDisruptionBudget": {"enabled": True, "minAvailable": 2},
    "canary": {"enabled": True},
    "resources": {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    },
    "config": {"backupBucket": "agent-prod-backups-1234"},
}
PRODUCTION_POLICIES = [
    kubernetes.PRODUCTION_REPLICAS,
    kubernetes.PRODUCTION_DISRUPTION_BUDGET,
    kubernetes.PRODUCTION_CANARY,
]


def release(values: dict[str, Any], *, stack: str = "prod", chart: str = CHART, **kw: Any) -> Any:
    props = {"chart": chart, "name": "agent", "namespace": "agent", "values": values}
    return resource_args(kubernetes.RELEASE, props, name="agent-service", stack=stack, **kw)


def changed(path: str, value: Any) -> dict[str, Any]:
    """PROD_VALUES with `path` set to `value` (None removes it)."""
    values = copy.deepcopy(PROD_VALUES)
    *parents, leaf = path.split(".")
    node = values
    for key in parents:
        node = node[key]
    if value is None:
        node.pop(leaf)
    else:
        node[leaf] = value
    return values


def test_enforcement_levels() -> None:
    levels = {policy.name: policy.enforcement_level for policy in kubernetes.POLICIES}
    assert levels.pop("kubernetes-image-not-latest-in-dev") is EnforcementLevel.ADVISORY
    assert set(levels.values()) == {EnforcementLevel.MANDATORY}


@pytest.mark.parametrize("policy", kubernetes.POLICIES, ids=lambda p: p.name)
@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_production_grade_values_comply_everywhere(policy: Any, stack: str) -> None:
    assert check(policy, release(PROD_VALUES, stack=stack)) == []


@pytest.mark.parametrize(
    ("policy", "path", "value", "expected"),
    [
        (kubernetes.PRODUCTION_REPLICAS, "replicaCount", 2, "replicaCount 2: production needs 3+"),
        (kubernetes.PRODUCTION_REPLICAS, "replicaCount", None, "replicaCount unset"),
        (kubernetes.PRODUCTION_REPLICAS, "autoscaling.minReplicas", 1, "go down to 1 replicas"),
        (kubernetes.PRODUCTION_DISRUPTION_BUDGET, "podDisruptionBudget.enabled", False, "no Pod"),
        (kubernetes.PRODUCTION_DISRUPTION_BUDGET, "podDisruptionBudget", None, "no Pod"),
        (kubernetes.PRODUCTION_DISRUPTION_BUDGET, "podDisruptionBudget.minAvailable", 0, "every"),
        (kubernetes.PRODUCTION_CANARY, "canary.enabled", False, "without the canary"),
        (kubernetes.PRODUCTION_CANARY, "canary", None, "without the canary"),
    ],
    ids=[
        "two-replicas",
        "replicas-unset",
        "autoscaling-floor",
        "pdb-off",
        "pdb-unset",
        "pdb-min-zero",
        "canary-off",
        "canary-unset",
    ],
)
def test_production_shortfalls_are_reported(
    policy: Any, path: str, value: Any, expected: str
) -> None:
    messages = check(policy, release(changed(path, value)))
    assert len(messages) == 1
    assert expected in messages[0]
    assert messages[0].startswith("'agent-service'")


@pytest.mark.parametrize("policy", PRODUCTION_POLICIES, ids=lambda p: p.name)
def test_production_rules_leave_other_stacks_alone(policy: Any) -> None:
    small = {"replicaCount": 1, "autoscaling": {"enabled": False}, "canary": {"enabled": False}}
    assert check(policy, release(small, stack="dev")) == []
    assert check(policy, release(small, stack="staging")) == []


def test_the_replica_minimum_and_production_stacks_come_from_config() -> None:
    config = {"minProductionReplicas": 5.0, "productionStacks": ["staging"]}
    messages = check(
        kubernetes.PRODUCTION_REPLICAS, release(PROD_VALUES, stack="staging", config=config)
    )
    assert len(messages) == 2
    assert (
        check(kubernetes.PRODUCTION_REPLICAS, release(changed("replicaCount", 1), config=config))
        == []
    )


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        (None, "resources.requests.cpu, resources.requests.memory, resources.limits.memory"),
        ({"requests": {"cpu": "250m", "memory": "512Mi"}}, "resources.limits.memory"),
        ({"requests": {"cpu": "", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}, "requests.cpu"),
    ],
    ids=["none", "no-limits", "empty-cpu"],
)
def test_unset_resources_are_named_in_every_stack(resources: Any, expected: str) -> None:
    for stack in ("dev", "prod"):
        messages = check(
            kubernetes.RESOURCES_SET, release(changed("resources", resources), stack=stack)
        )
        assert len(messages) == 1
        assert expected in messages[0]


def test_the_required_resource_fields_come_from_config() -> None:
    values = changed(
        "resources", {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
    )
    assert check(kubernetes.RESOURCES_SET, release(values)) == []
    config = {"requiredResourceFields": ["limits.cpu"]}
    assert len(check(kubernetes.RESOURCES_SET, release(values, config=config))) == 1


@pytest.mark.parametrize(
    "image",
    [
        {"repository": "agent", "tag": "latest"},
        {"repository": "agent", "tag": " Latest "},
        {"repository": "agent:latest"},
    ],
    ids=["tag", "tag-case", "in-repository"],
)
def test_latest_is_mandatory_outside_dev_and_advisory_in_dev(image: dict[str, Any]) -> None:
    values = changed("image", image)
    for stack in ("staging", "prod"):
        assert len(check(kubernetes.IMAGE_NOT_LATEST, release(values, stack=stack))) == 1
        assert check(kubernetes.IMAGE_NOT_LATEST_IN_DEV, release(values, stack=stack)) == []
    dev = release(values, stack="dev")
    assert check(kubernetes.IMAGE_NOT_LATEST, dev) == []
    messages = check(kubernetes.IMAGE_NOT_LATEST_IN_DEV, dev)
    assert len(messages) == 1
    assert "deploy a version tag or a digest" in messages[0]


def test_a_digest_pins_the_image_whatever_the_tag() -> None:
    values = changed("image", {"repository": "agent", "tag": "latest", "digest": "sha256:ab12"})
    assert check(kubernetes.IMAGE_NOT_LATEST, release(values)) == []


def test_a_urn_without_a_stack_gets_the_mandatory_image_rule() -> None:
    values = changed("image", {"repository": "agent", "tag": "latest"})
    args = release(values, resource_urn="no-stack-here")
    assert len(check(kubernetes.IMAGE_NOT_LATEST, args)) == 1
    assert check(kubernetes.IMAGE_NOT_LATEST_IN_DEV, args) == []


@pytest.mark.parametrize("policy", kubernetes.POLICIES, ids=lambda p: p.name)
def test_releases_of_other_charts_are_left_alone(policy: Any) -> None:
    bare = {"image": {"tag": "latest"}, "replicaCount": 1}
    assert check(policy, release(bare, chart="flagger")) == []


@pytest.mark.parametrize(
    "chart",
    ["charts/langgraph-agent", "./charts/langgraph-agent/", "oci://registry/langgraph-agent"],
)
def test_the_service_chart_is_found_by_its_last_path_segment(chart: str) -> None:
    args = release(changed("canary", None), chart=chart)
    assert len(check(kubernetes.PRODUCTION_CANARY, args)) == 1


def test_a_release_without_values_fails_the_rules_that_need_them() -> None:
    args = resource_args(kubernetes.RELEASE, {"chart": CHART}, name="agent-service")
    for policy in (*PRODUCTION_POLICIES, kubernetes.RESOURCES_SET):
        assert len(check(policy, args)) == 1, policy.name


def test_a_retired_chart_is_flagged_with_where_it_was_announced() -> None:
    props = {
        "chart": "ingress-nginx",
        "repositoryOpts": {"repo": "https://kubernetes.github.io/ingress-nginx"},
    }
    (problem,) = check(
        kubernetes.NO_RETIRED_CHART, resource_args(kubernetes.RELEASE, props, name="edge")
    )
    assert "'edge' installs ingress-nginx, retired in March 2026" in problem
    assert "kubernetes.io/blog/2025/11/11/ingress-nginx-retirement" in problem
    assert (
        check(kubernetes.NO_RETIRED_CHART, resource_args(kubernetes.RELEASE, {"chart": "flagger"}))
        == []
    )
    # An OCI reference is read by its last segment, like a repository chart.
    oci = {"chart": "oci://docker.io/envoyproxy/gateway-helm", "version": "v1.8.2"}
    assert check(kubernetes.NO_RETIRED_CHART, resource_args(kubernetes.RELEASE, oci)) == []
    retired_oci = {"chart": "oci://registry.example/charts/ingress-nginx"}
    assert (
        len(check(kubernetes.NO_RETIRED_CHART, resource_args(kubernetes.RELEASE, retired_oci))) == 1
    )
