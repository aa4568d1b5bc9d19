"""The Kubernetes side: a provider for the new cluster, the add-ons, and the service's release
of the local chart `charts/langgraph-agent` with values built by `release_values`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.addons import AddonChart
from infra.edge import GatewayObject

CHART_PATH = Path(__file__).resolve().parents[1] / "charts" / "langgraph-agent"


@dataclass(frozen=True)
class SecretStoreSpec:
    """External Secrets reads Secrets Manager as the service account (its IRSA role)."""

    name: str
    region: str
    service_account: str


def secret_store_spec(spec: SecretStoreSpec) -> dict[str, Any]:
    return {
        "provider": {
            "aws": {
                "service": "SecretsManager",
                "region": spec.region,
                "auth": {"jwt": {"serviceAccountRef": {"name": spec.service_account}}},
            }
        }
    }


@dataclass(frozen=True)
class ReleaseArgs:
    kubeconfig: pulumi.Input[str]
    namespace: str
    release_name: str
    values: pulumi.Input[Mapping[str, Any]]
    addons: Sequence[AddonChart]
    # What must exist before anything is installed: cluster access and nodes.
    cluster_ready: Sequence[pulumi.Resource]
    # What the service's pods need before they start: their IAM permissions and the first
    # versions of the secrets they read (terraform-aws-eks orders its add-ons the same way).
    release_ready: Sequence[pulumi.Resource] = ()
    # Set when External Secrets syncs the credentials: the store the chart's ExternalSecret uses.
    secret_store: SecretStoreSpec | None = None
    # The edge's EnvoyProxy, GatewayClass and Gateway, applied after the add-ons (their CRDs)
    # and before the service's release (whose HTTPRoute attaches to the Gateway).
    gateway_objects: Sequence[GatewayObject] = ()
    # What the edge's objects need first: the load balancer controller's permissions and an
    # issued certificate.
    edge_ready: Sequence[pulumi.Resource] = ()
    chart_path: Path = CHART_PATH


class Release(pulumi.ComponentResource):
    release_status: pulumi.Output[Any]

    def __init__(
        self, name: str, args: ReleaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-platform:release:Release", name, None, opts)
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=args.kubeconfig,
            enable_server_side_apply=True,
            delete_unreachable=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.cluster_ready)),
        )
        on_cluster = pulumi.ResourceOptions(parent=self, provider=provider)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.namespace,
                labels={
                    # The chart's pods run as non-root with a read-only root filesystem.
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/audit": "restricted",
                },
            ),
            opts=on_cluster,
        )
        installed: list[pulumi.Resource] = [namespace]
        for addon in args.addons:
            # In order: an add-on may need the CRDs of those before it (ServiceMonitor...).
            installed.append(
                k8s.helm.v3.Release(
                    f"{name}-{addon.name}",
                    name=addon.name,
                    chart=addon.chart,
                    version=addon.version,
                    repository_opts=(
                        None if addon.oci else k8s.helm.v3.RepositoryOptsArgs(repo=addon.repository)
                    ),
                    skip_crds=addon.skip_crds or None,
                    namespace=addon.namespace,
                    create_namespace=True,
                    values=addon.values,
                    atomic=True,
                    cleanup_on_fail=True,
                    timeout=600,
                    opts=pulumi.ResourceOptions(
                        parent=self, provider=provider, depends_on=list(installed)
                    ),
                )
            )
        if args.secret_store is not None:
            installed.append(
                k8s.apiextensions.CustomResource(
                    f"{name}-secret-store",
                    api_version="external-secrets.io/v1",
                    kind="SecretStore",
                    metadata={"name": args.secret_store.name, "namespace": args.namespace},
                    spec=secret_store_spec(args.secret_store),
                    # The store's CRD comes with the External Secrets add-on.
                    opts=pulumi.ResourceOptions(
                        parent=self, provider=provider, depends_on=list(installed)
                    ),
                )
            )
        addons_installed = list(installed)
        for item in args.gateway_objects:
            installed.append(
                k8s.apiextensions.CustomResource(
                    f"{name}-{item.name}",
                    api_version=item.api_version,
                    kind=item.kind,
                    metadata=item.metadata,
                    spec=item.spec,
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        provider=provider,
                        depends_on=[*addons_installed, *args.edge_ready],
                    ),
                )
            )
        release = k8s.helm.v3.Release(
            f"{name}-service",
            name=args.release_name,
            chart=str(args.chart_path),
            namespace=args.namespace,
            create_namespace=False,
            values=args.values,
            # A failed upgrade rolls back instead of leaving a half-applied release.
            atomic=True,
            cleanup_on_fail=True,
            wait_for_jobs=True,
            max_history=10,
            timeout=900,
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider, depends_on=[*installed, *args.release_ready]
            ),
        )
        self.release_status = release.status
        self.register_outputs({"status": self.release_status})
