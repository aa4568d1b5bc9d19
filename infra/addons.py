"""Cluster add-ons from their upstream charts, pinned, installed when the stack asks for them.

The namespaces and service names here are the ones the service's chart expects by default
(the NetworkPolicy's gateway and Prometheus namespaces, Flagger's load tester URL, the
Gateway's in-cluster URL of the canary's load test).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from infra.config import PlatformAddonsConfig
from infra.edge import (
    GATEWAY_NAMESPACE,
    LOAD_BALANCER_CONTROLLER_NAMESPACE,
    LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT,
)

PROMETHEUS_RELEASE = "kube-prometheus-stack"
PROMETHEUS_NAMESPACE = "monitoring"
PROMETHEUS_URL = f"http://{PROMETHEUS_RELEASE}-prometheus.{PROMETHEUS_NAMESPACE}:9090"
FLAGGER_NAMESPACE = "flagger-system"


@dataclass(frozen=True)
class AddonChart:
    name: str
    repository: str
    chart: str
    version: str
    namespace: str
    values: dict[str, Any] = field(default_factory=dict)
    # Leave the chart's crds/ alone: another release owns those CRDs (and upgrades them,
    # which Helm never does for crds/).
    skip_crds: bool = False

    @property
    def oci(self) -> bool:
        """Published as an OCI artifact: `chart` is the full oci:// reference."""
        return self.chart.startswith("oci://")


EXTERNAL_SECRETS = AddonChart(
    name="external-secrets",
    repository="https://charts.external-secrets.io",
    chart="external-secrets",
    version="0.20.1",
    namespace="external-secrets",
    values={"installCRDs": True},
)
METRICS_SERVER = AddonChart(
    name="metrics-server",
    repository="https://kubernetes-sigs.github.io/metrics-server/",
    chart="metrics-server",
    version="3.13.0",
    namespace="kube-system",
    values={"replicas": 2, "podDisruptionBudget": {"enabled": True, "minAvailable": 1}},
)
PROMETHEUS = AddonChart(
    name=PROMETHEUS_RELEASE,
    repository="https://prometheus-community.github.io/helm-charts",
    chart="kube-prometheus-stack",
    version="75.15.0",
    namespace=PROMETHEUS_NAMESPACE,
    values={
        # Pick up every ServiceMonitor and PrometheusRule, not only this release's.
        "prometheus": {
            "prometheusSpec": {
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
            }
        },
        "grafana": {"enabled": False},
    },
)


def cluster_autoscaler(
    cluster_name: str,
    region: str,
    role_arn: pulumi.Input[str],
    kubernetes_version: str,
    *,
    namespace: str,
    service_account: str,
) -> AddonChart:
    """Grows the node groups when pods cannot be scheduled (the HPA asks for more replicas
    than the nodes hold) and shrinks them when nodes idle; the node groups leave their
    desired size to it. Its minor version must match the cluster's
    (https://github.com/kubernetes/autoscaler/tree/master/cluster-autoscaler#releases), so the
    image tag follows the cluster version (registry.k8s.io/autoscaling/cluster-autoscaler
    publishes v<minor>.0 with each Kubernetes release) rather than the chart's appVersion."""
    return AddonChart(
        name="cluster-autoscaler",
        repository="https://kubernetes.github.io/autoscaler",
        chart="cluster-autoscaler",
        version="9.46.6",
        namespace=namespace,
        values={
            "cloudProvider": "aws",
            "awsRegion": region,
            # Finds the managed node groups by the tags EKS puts on their ASGs.
            "autoDiscovery": {"clusterName": cluster_name},
            "image": {"tag": f"v{kubernetes_version}.0"},
            "rbac": {
                "serviceAccount": {
                    "create": True,
                    "name": service_account,
                    "annotations": {"eks.amazonaws.com/role-arn": role_arn},
                }
            },
            "replicaCount": 1,
            "extraArgs": {"balance-similar-node-groups": True, "expander": "least-waste"},
        },
    )


# Envoy Gateway's charts, one version for both (the CRDs must match the controller):
# https://gateway.envoyproxy.io/docs/install/install-helm/ (OCI on Docker Hub).
ENVOY_GATEWAY_VERSION = "v1.8.2"


def gateway_api_crds() -> AddonChart:
    """The Gateway API CRDs (standard channel: GatewayClass, Gateway, HTTPRoute, ...) and
    Envoy Gateway's own, from Envoy Gateway's CRD chart: as templates, so that an upgrade of
    this release upgrades them (https://gateway.envoyproxy.io/docs/install/
    gateway-crds-helm-api/)."""
    return AddonChart(
        name="gateway-crds",
        repository="",
        chart="oci://docker.io/envoyproxy/gateway-crds-helm",
        version=ENVOY_GATEWAY_VERSION,
        namespace=GATEWAY_NAMESPACE,
        values={
            "crds": {
                "gatewayAPI": {"enabled": True, "channel": "standard"},
                "envoyGateway": {"enabled": True},
            }
        },
    )


def envoy_gateway() -> AddonChart:
    """The Gateway API implementation behind the edge; its CRDs come from `gateway_api_crds`."""
    return AddonChart(
        name="envoy-gateway",
        repository="",
        chart="oci://docker.io/envoyproxy/gateway-helm",
        version=ENVOY_GATEWAY_VERSION,
        namespace=GATEWAY_NAMESPACE,
        values={"crds": {"enabled": False}, "deployment": {"replicas": 2}},
        skip_crds=True,
    )


def aws_load_balancer_controller(
    cluster_name: str, region: str, vpc_id: pulumi.Input[str], role_arn: pulumi.Input[str]
) -> AddonChart:
    """Provisions the NLB for the Gateway's proxies (and any Service of load balancer class
    service.k8s.aws/nlb). Region and VPC are given: the nodes' IMDS hop limit of 1 keeps pods
    from discovering them (https://kubernetes-sigs.github.io/aws-load-balancer-controller/
    latest/deploy/configurations/, `--aws-region`, `--aws-vpc-id`). Chart 1.14.0 is controller
    v2.14.0, whose published IAM policy infra/edge.py narrows."""
    return AddonChart(
        name="aws-load-balancer-controller",
        repository="https://aws.github.io/eks-charts",
        chart="aws-load-balancer-controller",
        version="1.14.0",
        namespace=LOAD_BALANCER_CONTROLLER_NAMESPACE,
        values={
            "clusterName": cluster_name,
            "region": region,
            "vpcId": vpc_id,
            "replicaCount": 2,
            "serviceAccount": {
                "create": True,
                "name": LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT,
                "annotations": {"eks.amazonaws.com/role-arn": role_arn},
            },
            # ALB-only integrations, not granted by the role.
            "enableShield": False,
            "enableWaf": False,
            "enableWafv2": False,
            # Only Services that name the class explicitly get an NLB from it.
            "enableServiceMutatorWebhook": False,
        },
    )


def flagger(mesh_provider: str, shared_prometheus: bool) -> list[AddonChart]:
    """Flagger and its load tester; the canary analysis queries Prometheus."""
    values: dict[str, Any] = {"meshProvider": mesh_provider}
    if shared_prometheus:
        values["metricsServer"] = PROMETHEUS_URL
        # Flagger's own metrics (canary status) feed the chart's canary-failure alert.
        values["serviceMonitor"] = {"enabled": True}
    else:
        values["prometheus"] = {"install": True}
    return [
        AddonChart(
            name="flagger",
            repository="https://flagger.app",
            chart="flagger",
            version="1.42.0",
            namespace=FLAGGER_NAMESPACE,
            values=values,
        ),
        AddonChart(
            name="flagger-loadtester",
            repository="https://flagger.app",
            chart="loadtester",
            version="0.37.0",
            namespace=FLAGGER_NAMESPACE,
        ),
    ]


def selected_addons(
    config: PlatformAddonsConfig,
    mesh_provider: str,
    autoscaler: AddonChart,
    edge: list[AddonChart] | None = None,
) -> list[AddonChart]:
    """The add-ons in install order: each may rely on the CRDs of those before it. External
    Secrets and the cluster autoscaler are not optional; the edge's (load balancer controller,
    Gateway API CRDs, Envoy Gateway) come with a stack's `edge`."""
    addons = [EXTERNAL_SECRETS, autoscaler, *(edge or [])]
    if config.metrics_server:
        addons.append(METRICS_SERVER)
    if config.prometheus:
        addons.append(PROMETHEUS)
    if config.flagger:
        addons += flagger(mesh_provider, shared_prometheus=config.prometheus)
    return addons
