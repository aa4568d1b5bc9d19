"""Cluster add-ons from their upstream charts, pinned, installed when the stack asks for them.

The namespaces and service names here are the ones the service's chart expects by default
(the NetworkPolicy's ingress-controller and Prometheus namespaces, Flagger's load tester URL,
the nginx controller URL of the canary's load test).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from infra.config import PlatformAddonsConfig

PROMETHEUS_RELEASE = "kube-prometheus-stack"
PROMETHEUS_NAMESPACE = "monitoring"
PROMETHEUS_URL = f"http://{PROMETHEUS_RELEASE}-prometheus.{PROMETHEUS_NAMESPACE}:9090"
INGRESS_NAMESPACE = "ingress-nginx"
FLAGGER_NAMESPACE = "flagger-system"


@dataclass(frozen=True)
class AddonChart:
    name: str
    repository: str
    chart: str
    version: str
    namespace: str
    values: dict[str, Any] = field(default_factory=dict)


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


def ingress_nginx(scraped: bool) -> AddonChart:
    """The controller behind an AWS Network Load Balancer, its metrics on for the canary."""
    return AddonChart(
        name="ingress-nginx",
        repository="https://kubernetes.github.io/ingress-nginx",
        chart="ingress-nginx",
        version="4.13.2",
        namespace=INGRESS_NAMESPACE,
        values={
            "controller": {
                "replicaCount": 2,
                "service": {
                    "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}
                },
                "metrics": {"enabled": True, "serviceMonitor": {"enabled": scraped}},
            }
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
    config: PlatformAddonsConfig, mesh_provider: str, autoscaler: AddonChart
) -> list[AddonChart]:
    """The add-ons in install order: each may rely on the CRDs of those before it. External
    Secrets and the cluster autoscaler are not optional."""
    addons = [EXTERNAL_SECRETS, autoscaler]
    if config.metrics_server:
        addons.append(METRICS_SERVER)
    if config.prometheus:
        addons.append(PROMETHEUS)
    if config.ingress_nginx:
        addons.append(ingress_nginx(scraped=config.prometheus))
    if config.flagger:
        addons += flagger(mesh_provider, shared_prometheus=config.prometheus)
    return addons
