"""One loopback cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok nodes,
Flagger) for the whole session, started from the binaries `make cluster-build` cached."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.kube import Kube
from tools.cluster import build, control_plane

_counter = itertools.count()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[control_plane.Cluster]:
    try:
        build.ensure_built(build_missing=False)
    except build.NotBuilt as error:
        # make test builds them first (the cluster-build prerequisite); a bare pytest run
        # must say how, not fail somewhere inside.
        pytest.fail(f"the cluster binaries are {error}", pytrace=False)
    state: Path = tmp_path_factory.mktemp("cluster")
    try:
        started = control_plane.up(state, detach=False)
    except control_plane.ClusterError:
        control_plane.stop(control_plane.Cluster.load(state))
        raise
    try:
        yield started
    finally:
        control_plane.stop(started)


@pytest.fixture(scope="session")
def kube(cluster: control_plane.Cluster) -> Kube:
    return Kube(cluster)


@pytest.fixture
def namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace enforcing Pod Security `restricted`, deleted afterwards."""
    base = request.node.name.split("[")[0].replace("_", "-").lower()[:40].strip("-")
    name = kube.namespace(f"{base}-{next(_counter)}")
    try:
        yield name
    finally:
        kube.delete_namespace(name)
