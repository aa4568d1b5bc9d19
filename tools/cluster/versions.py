"""Pinned versions of everything `make cluster` builds: one place, and the cache key."""

from __future__ import annotations

# k8s.io/kubernetes itself; its staging modules are published as v0.<minor>.<patch>.
KUBERNETES = "v1.36.3"
# Simulated nodes: kwok marks pods Running/Ready without a container runtime.
KWOK = "v0.8.0"
# Production installs the Flagger chart 1.42.0 (infra/addons.py), i.e. Flagger v1.42.0, which
# the module proxy here refuses (403 "not available"); v1.41.0 is the nearest release below.
# Not older: Flagger <= 1.36 is built on k8s.io/api 0.27, whose copy of the pod spec drops the
# chart's `preStop: sleep` handler, and the -primary Deployment is then refused by the server.
FLAGGER = "v1.41.0"
# CRD manifests only (never built): PodMonitor/PrometheusRule and ExternalSecret.
PROMETHEUS_OPERATOR = "v0.85.0"
EXTERNAL_SECRETS = "v1.3.2"
# Gateway API (standard channel): the chart's HTTPRoute, and the route Flagger's gatewayapi
# provider generates; the same release the chart's HTTPRoute schema is typed from.
GATEWAY_API = "v1.4.0"

# Go 1.27 turns on the jsonv2 experiment by default and the apiserver built with it serves a
# broken /openapi/v2 (helm and kubectl fail with "failed to download openapi"); nojsonv2 keeps
# the encoding/json behaviour Kubernetes v1.36 was released with.
GOEXPERIMENT = "nojsonv2"


def staging_version(kubernetes: str = KUBERNETES) -> str:
    """k8s.io/api etc. are tagged v0.X.Y for Kubernetes v1.X.Y."""
    return "v0." + kubernetes.removeprefix("v").split(".", 1)[1]


def manifests_key() -> str:
    """Cache key of the gathered manifests (CRDs and kwok's stages) by version."""
    return f"flagger-{FLAGGER}_po-{PROMETHEUS_OPERATOR}_eso-{EXTERNAL_SECRETS}_kwok-{KWOK}"
