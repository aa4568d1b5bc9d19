"""The wrapper module make cluster-build generates (offline: no module is downloaded)."""

from __future__ import annotations

import pytest

from tools.cluster import build, versions

KUBERNETES_GOMOD = """module k8s.io/kubernetes

go 1.26.0

require (
	k8s.io/api v0.0.0
	github.com/google/cel-go v0.26.0
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go // the staging copy
)

replace github.com/example/forked v1.2.0 => github.com/example/fork v1.2.1
"""


def test_staging_replaces_point_at_the_published_modules() -> None:
    kubernetes = build.BUILDS[0]
    text = build.wrapper_gomod_text(kubernetes, KUBERNETES_GOMOD)
    staging = versions.staging_version()
    assert f"require k8s.io/kubernetes {versions.KUBERNETES}" in text
    assert f"\tk8s.io/api => k8s.io/api {staging}" in text
    assert f"\tk8s.io/client-go => k8s.io/client-go {staging}" in text
    assert "\tgithub.com/example/forked v1.2.0 => github.com/example/fork v1.2.1" in text
    assert "go 1.26.0" in text
    assert "./staging" not in text


def test_staging_version_follows_the_kubernetes_pin() -> None:
    assert versions.staging_version("v1.36.3") == "v0.36.3"


def test_a_local_replace_outside_kubernetes_is_refused() -> None:
    kwok = next(b for b in build.BUILDS if b.name == "kwok")
    with pytest.raises(SystemExit, match="local path"):
        build.wrapper_gomod_text(kwok, "module x\n\nreplace a/b => ../b\n")


def test_go_never_switches_toolchain_and_never_builds_with_jsonv2() -> None:
    env = build.go_env()
    assert env["GOTOOLCHAIN"] == "local"
    assert env["GOEXPERIMENT"] == "nojsonv2"
