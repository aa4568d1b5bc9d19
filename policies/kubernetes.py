"""The service on Kubernetes, read from the values its Helm release passes to the chart:
in production 3+ replicas, a disruption budget and the canary; resources set everywhere;
no image tagged `latest` (advisory in dev stacks, mandatory elsewhere).

Only the release of the service's own chart (`serviceChart`) is read; releases of other
charts (Flagger, metrics-server) are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from policies.config import (
    config_schema,
    in_stacks,
    integer,
    is_dev,
    is_production,
    string,
    strings,
)
from policies.props import as_number, is_true, lookup

RELEASE = "kubernetes:helm.sh/v3:Release"
LATEST = "latest"
# Charts whose project stopped fixing them, with where that was announced.
RETIRED_CHARTS = {
    "ingress-nginx": (
        "retired in March 2026: no releases or security fixes since "
        "(https://kubernetes.io/blog/2025/11/11/ingress-nginx-retirement/); the edge is Envoy "
        "Gateway behind the AWS Load Balancer Controller (infra/edge.py)"
    ),
}


def chart_name(chart: Any) -> str | None:
    """`charts/langgraph-agent`, `/abs/charts/langgraph-agent/` or `oci://r/langgraph-agent`."""
    if not isinstance(chart, str) or not chart.strip("/"):
        return None
    return PurePosixPath(chart.rstrip("/")).name


def is_service_release(type_: str, props: Mapping[str, Any], config: Mapping[str, Any]) -> bool:
    return type_ == RELEASE and chart_name(lookup(props, "chart")) == string(config, "serviceChart")


def _values(args: ResourceValidationArgs) -> Mapping[str, Any] | None:
    """The service release's values, or None for any other resource."""
    if not is_service_release(args.resource_type, args.props, args.get_config()):
        return None
    values = lookup(args.props, "values")
    return values if isinstance(values, Mapping) else {}


def _production_values(args: ResourceValidationArgs) -> Mapping[str, Any] | None:
    values = _values(args)
    if values is None or not is_production(args.urn, args.get_config()):
        return None
    return values


def _replicas(args: ResourceValidationArgs, report: ReportViolation) -> None:
    values = _production_values(args)
    if values is None:
        return
    minimum = integer(args.get_config(), "minProductionReplicas")
    replicas = as_number(lookup(values, "replicaCount"))
    if replicas is None or replicas < minimum:
        shown = "unset" if replicas is None else f"{replicas:g}"
        report(f"'{args.name}' sets replicaCount {shown}: production needs {minimum}+.", None)
    if is_true(lookup(values, "autoscaling.enabled")):
        floor = as_number(lookup(values, "autoscaling.minReplicas"))
        if floor is None or floor < minimum:
            shown = "unset" if floor is None else f"{floor:g}"
            report(
                f"'{args.name}' lets autoscaling go down to {shown} replicas: set "
                f"autoscaling.minReplicas to {minimum}+.",
                None,
            )


def _disruption_budget(args: ResourceValidationArgs, report: ReportViolation) -> None:
    values = _production_values(args)
    if values is None:
        return
    if not is_true(lookup(values, "podDisruptionBudget.enabled")):
        report(f"'{args.name}' has no PodDisruptionBudget: set podDisruptionBudget.enabled.", None)
        return
    min_available = lookup(values, "podDisruptionBudget.minAvailable")
    if min_available in (0, "0", "0%"):
        report(
            f"'{args.name}' has a PodDisruptionBudget that allows every pod to go "
            "(minAvailable 0).",
            None,
        )


def _canary(args: ResourceValidationArgs, report: ReportViolation) -> None:
    values = _production_values(args)
    if values is None:
        return
    if not is_true(lookup(values, "canary.enabled")):
        report(
            f"'{args.name}' rolls out without the canary: set canary.enabled in production.",
            None,
        )


def _resources(args: ResourceValidationArgs, report: ReportViolation) -> None:
    values = _values(args)
    if values is None:
        return
    required = strings(args.get_config(), "requiredResourceFields")
    missing = [f for f in required if lookup(values, f"resources.{f}") in (None, "", 0)]
    if missing:
        listed = ", ".join(f"resources.{field}" for field in missing)
        report(f"'{args.name}' leaves {listed} unset.", None)


def latest_image_problem(values: Mapping[str, Any]) -> str | None:
    """Why the image is not pinned, or None. A digest pins it whatever the tag says."""
    if lookup(values, "image.digest"):
        return None
    tag = lookup(values, "image.tag")
    repository = lookup(values, "image.repository")
    if isinstance(tag, str) and tag.strip().lower() == LATEST:
        return 'image.tag is "latest"'
    if isinstance(repository, str) and repository.lower().endswith(f":{LATEST}"):
        return 'image.repository ends in ":latest"'
    return None


def _image_pinned(args: ResourceValidationArgs, report: ReportViolation, *, dev: bool) -> None:
    values = _values(args)
    if values is None or is_dev(args.urn, args.get_config()) != dev:
        return
    problem = latest_image_problem(values)
    if problem:
        report(f"'{args.name}': {problem}; deploy a version tag or a digest.", None)


def _image_pinned_outside_dev(args: ResourceValidationArgs, report: ReportViolation) -> None:
    _image_pinned(args, report, dev=False)


def _image_pinned_in_dev(args: ResourceValidationArgs, report: ReportViolation) -> None:
    _image_pinned(args, report, dev=True)


def _image_by_digest(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A digest names the exact bytes that were built, scanned and tested; a tag is a name
    the registry resolves at pull time (checkov CKV_K8S_43 asks the same of the manifests)."""
    values = _values(args)
    if values is None or not in_stacks(args.urn, args.get_config(), "digestStacks"):
        return
    digest = lookup(values, "image.digest")
    if not (isinstance(digest, str) and digest.startswith("sha256:") and len(digest) == 71):
        report(
            f"'{args.name}' pulls its image by tag ({lookup(values, 'image.tag')!r}): release "
            "it by digest (image.digest sha256:...), as built and pushed.",
            None,
        )


def _retired_chart(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != RELEASE:
        return
    name = chart_name(lookup(args.props, "chart"))
    if name in RETIRED_CHARTS:
        report(f"'{args.name}' installs {name}, {RETIRED_CHARTS[name]}.", None)


_RELEASE_SETTINGS = ("serviceChart",)
_PRODUCTION_SETTINGS = (*_RELEASE_SETTINGS, "productionStacks")

PRODUCTION_REPLICAS = ResourceValidationPolicy(
    name="kubernetes-production-replicas",
    description="In production the service runs the minimum replicas or more.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_replicas,
    config_schema=config_schema(*_PRODUCTION_SETTINGS, "minProductionReplicas"),
)
PRODUCTION_DISRUPTION_BUDGET = ResourceValidationPolicy(
    name="kubernetes-production-pdb",
    description="In production the service has a PodDisruptionBudget.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_disruption_budget,
    config_schema=config_schema(*_PRODUCTION_SETTINGS),
)
PRODUCTION_CANARY = ResourceValidationPolicy(
    name="kubernetes-production-canary",
    description="In production the service rolls out through the Flagger canary.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_canary,
    config_schema=config_schema(*_PRODUCTION_SETTINGS),
)
RESOURCES_SET = ResourceValidationPolicy(
    name="kubernetes-resources-set",
    description="The service's containers declare resource requests and limits.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_resources,
    config_schema=config_schema(*_RELEASE_SETTINGS, "requiredResourceFields"),
)
IMAGE_NOT_LATEST = ResourceValidationPolicy(
    name="kubernetes-image-not-latest",
    description="Outside dev stacks the service's image is pinned, not `latest`.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_image_pinned_outside_dev,
    config_schema=config_schema(*_RELEASE_SETTINGS, "devStacks"),
)
IMAGE_NOT_LATEST_IN_DEV = ResourceValidationPolicy(
    name="kubernetes-image-not-latest-in-dev",
    description="In dev stacks an image tagged `latest` is flagged, not blocked.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_image_pinned_in_dev,
    config_schema=config_schema(*_RELEASE_SETTINGS, "devStacks"),
)

IMAGE_BY_DIGEST = ResourceValidationPolicy(
    name="kubernetes-image-by-digest",
    description="In staging and prod the service's image is released by digest.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_image_by_digest,
    config_schema=config_schema(*_RELEASE_SETTINGS, "digestStacks"),
)

# Mandatory since the edge moved to Envoy Gateway behind the AWS Load Balancer Controller
# (issue 15, H4): a retired chart gets no security fixes, and none may come back.
NO_RETIRED_CHART = ResourceValidationPolicy(
    name="kubernetes-no-retired-chart",
    description="No Helm release installs a chart whose project was retired.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_retired_chart,
)

POLICIES = [
    PRODUCTION_REPLICAS,
    PRODUCTION_DISRUPTION_BUDGET,
    PRODUCTION_CANARY,
    RESOURCES_SET,
    IMAGE_NOT_LATEST,
    IMAGE_NOT_LATEST_IN_DEV,
    IMAGE_BY_DIGEST,
    NO_RETIRED_CHART,
]
