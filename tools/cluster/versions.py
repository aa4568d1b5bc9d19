"""Pinned versions of everything `make cluster` builds: one place, and the cache key."""

from __future__ import annotations

# k8s.io/kubernetes itself; its staging modules are published as v0.<minor>.<patch>.
KUBERNETES = "v1.36.3"
# Simulated nodes: kwok marks pods Running/Ready without a container runtime.
KWOK = "v0.8.0"
# The newest flagger tag the Go module proxy serves as a module.
FLAGGER = "v1.36.1"
# CRD manifests only (never built): ServiceMonitor/PrometheusRule and ExternalSecret.
PROMETHEUS_OPERATOR = "v0.85.0"
EXTERNAL_SECRETS = "v1.3.2"

# Go 1.27 turns on the jsonv2 experiment by default and the apiserver built with it serves a
# broken /openapi/v2 (helm and kubectl fail with "failed to download openapi"); nojsonv2 keeps
# the encoding/json behaviour Kubernetes v1.36 was released with.
GOEXPERIMENT = "nojsonv2"


def staging_version(kubernetes: str = KUBERNETES) -> str:
    """k8s.io/api etc. are tagged v0.X.Y for Kubernetes v1.X.Y."""
    return "v0." + kubernetes.removeprefix("v").split(".", 1)[1]


def cache_key() -> str:
    """Directory name for a machine-level cache of the built binaries and CRDs."""
    return (
        f"k8s-{KUBERNETES}_kwok-{KWOK}_flagger-{FLAGGER}"
        f"_po-{PROMETHEUS_OPERATOR}_eso-{EXTERNAL_SECRETS}"
    )
