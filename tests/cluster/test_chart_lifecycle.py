"""The chart on a real API server, chart-testing style: for every CI fixture and every stack's
release values, server-side validation of each object, then install --wait, upgrade with a
changed setting, rollback and uninstall, in a namespace enforcing Pod Security `restricted`.

Pods are simulated by kwok (scheduled by the real scheduler onto zone-labelled fake nodes,
then marked Running/Ready, Job pods Succeeded): admission, defaulting, CRD validation, Helm's
hook ordering and --wait are real; containers, probes and mounted secrets are not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.kube import CHART_DIR, Kube, recording, values_file
from tests.cluster.scenarios import Scenario, canary_on, scenarios

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.helm]

RELEASE = "agent"
FULLNAME = "agent-langgraph-agent"
WAIT = ["--wait=watcher", "--timeout=120s"]
# Kinds a release of this chart may create; after uninstall none may be left except below.
CHART_KINDS = (
    "deployments,replicasets,pods,services,configmaps,secrets,serviceaccounts,jobs,cronjobs,"
    "horizontalpodautoscalers,poddisruptionbudgets,networkpolicies,ingresses,roles,rolebindings,"
    "canaries.flagger.app,metrictemplates.flagger.app,podmonitors.monitoring.coreos.com,"
    "prometheusrules.monitoring.coreos.com,externalsecrets.external-secrets.io"
)
# Left behind on purpose: what every namespace has, and the migration Job (with its pod),
# which the chart keeps so its logs can be read; Helm never deletes hook resources on
# uninstall (https://helm.sh/docs/topics/charts_hooks/#hook-resources-are-not-managed-with-corresponding-releases).
BASELINE = {"configmap/kube-root-ca.crt", "serviceaccount/default"}
DOCUMENTED_LEFTOVERS = (f"job/{FULLNAME}-migration", f"pod/{FULLNAME}-migration-")

ALL = scenarios()


def _objects(kube: Kube, namespace: str) -> set[str]:
    items = json.loads(kube.kubectl("get", CHART_KINDS, "-n", namespace, "-o", "json"))["items"]
    return {f"{i['kind'].lower()}/{i['metadata']['name']}" for i in items}


def _render(values: Path, namespace: str, kube: Kube) -> str:
    return kube.helm("template", RELEASE, str(CHART_DIR), "-f", str(values), namespace=namespace)


def _template_annotation(deployment: dict[str, Any]) -> str | None:
    annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    value: str | None = annotations.get("test.agent-platform/revision")
    return value


@pytest.mark.parametrize("scenario", ALL, ids=[s.name for s in ALL])
def test_every_object_passes_server_side_validation(
    scenario: Scenario, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    """Every rendered object, hooks included, through the API server's validation, defaulting
    and admission (a dry run with strict field validation: unknown fields are errors)."""
    values = values_file(tmp_path, scenario.name, scenario.values())
    manifests = _render(values, namespace, kube)
    kinds = [d["kind"] for d in yaml.safe_load_all(manifests) if d]
    out = kube.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "--server-side",
        "-n", namespace, "-f", "-", stdin=manifests, namespace=namespace,
    )  # fmt: skip
    assert out.count("(server dry run)") == len(kinds), out


@pytest.mark.parametrize("scenario", ALL, ids=[s.name for s in ALL])
def test_install_upgrade_rollback_uninstall(
    scenario: Scenario, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    values = scenario.values()
    base = values_file(tmp_path, scenario.name, values)
    canary = canary_on(values)
    # A pod-template change: a new ReplicaSet on upgrade and a canary run under Flagger.
    changed = values_file(
        tmp_path,
        f"{scenario.name}-changed",
        {"podAnnotations": {"test.agent-platform/revision": "2"}},
    )
    target = FULLNAME
    try:
        kube.helm("install", RELEASE, str(CHART_DIR), "-f", str(base), *WAIT, namespace=namespace)
        deployment = kube.get("deployment", target, namespace=namespace)
        assert deployment["status"].get("readyReplicas", 0) >= 1 or canary, deployment["status"]
        pods = kube.get("pods", namespace=namespace)["items"]
        zones = {
            p["spec"].get("nodeName") for p in pods if p["metadata"]["name"].startswith(target)
        }
        assert zones, "no service pod"
        assert None not in zones, "every service pod is scheduled onto a node"

        migrates = kube.exists("job", f"{FULLNAME}-migration", namespace)
        # The chart runs the migration hook exactly when PostgreSQL is configured; the ordering
        # check below must not pass by finding no Job.
        config = values.get("config") or {}
        expected = bool(config.get("databaseUrl")) and (values.get("migration") or {}).get(
            "enabled", True
        )
        assert migrates == expected, f"migration Job present: {migrates}, expected: {expected}"
        generation = deployment["metadata"]["generation"]
        with recording(kube, namespace, "jobs", "deployments") as recorder:
            kube.helm(
                "upgrade", RELEASE, str(CHART_DIR), "-f", str(base), "-f", str(changed), *WAIT,
                namespace=namespace,
            )  # fmt: skip
        upgraded = kube.get("deployment", target, namespace=namespace)
        assert _template_annotation(upgraded) == "2"
        if migrates:
            _assert_migration_before_rollout(recorder.events, target, generation)
        if not canary:
            _assert_rolled_to_new_replicaset(kube, namespace, target, "2")

        kube.helm("rollback", RELEASE, "1", *WAIT, namespace=namespace)
        rolled_back = kube.get("deployment", target, namespace=namespace)
        assert _template_annotation(rolled_back) is None
        history = json.loads(kube.helm("history", RELEASE, "-o", "json", namespace=namespace))
        assert [h["status"] for h in history] == ["superseded", "superseded", "deployed"]
        if not canary:
            _assert_rolled_to_new_replicaset(kube, namespace, target, None)

        if canary:
            # docs/canary.md: the Canary goes first. With revertOnDeletion its finalizer hands
            # the target Deployment back; uninstalling both at once leaves the Canary
            # Terminating, its finalizer reverting a Deployment that is being deleted.
            kube.kubectl(
                "delete", "canary", FULLNAME, "-n", namespace, "--wait=true", "--timeout=90s"
            )
        kube.helm("uninstall", RELEASE, "--wait", "--timeout=120s", namespace=namespace)
        kube.wait_for(
            lambda: _only_documented_leftovers(_objects(kube, namespace)),
            "the release's objects to be gone after uninstall",
            namespace=namespace,
        )
    except AssertionError:
        print(f"--- events in {namespace} ---\n{kube.events(namespace)}")
        raise


def _only_documented_leftovers(objects: set[str]) -> bool:
    rest = objects - BASELINE
    return all(any(o.startswith(p) for p in DOCUMENTED_LEFTOVERS) for o in rest)


def _assert_migration_before_rollout(events: list[Any], deployment: str, generation: int) -> None:
    """The pre-upgrade migration Job has succeeded before Helm changes the Deployment."""
    succeeded = [
        e.resource_version
        for e in events
        if e.kind == "jobs"
        and e.name.endswith("-migration")
        and (e.obj.get("status") or {}).get("succeeded")
    ]
    changed = [
        e.resource_version
        for e in events
        if e.kind == "deployments"
        and e.name == deployment
        and e.obj["metadata"]["generation"] > generation
    ]
    assert succeeded, (
        f"no successful migration Job observed: {[(e.kind, e.name, e.type) for e in events]}"
    )
    assert changed, "the Deployment never changed during the upgrade"
    assert min(succeeded) < min(changed), (
        f"Deployment changed at resourceVersion {min(changed)} before the migration "
        f"succeeded at {min(succeeded)}"
    )


def _assert_rolled_to_new_replicaset(
    kube: Kube, namespace: str, deployment: str, revision: str | None
) -> None:
    """The Deployment's current ReplicaSet carries `revision` and every other is at 0."""

    def settled() -> bool:
        sets = kube.get("replicasets", namespace=namespace)["items"]
        mine = [
            s
            for s in sets
            if any(o["name"] == deployment for o in s["metadata"].get("ownerReferences", []))
        ]
        current = [s for s in mine if _template_annotation(s) == revision]
        others = [s for s in mine if _template_annotation(s) != revision]
        return (
            len(current) == 1
            and current[0]["status"].get("readyReplicas", 0) == current[0]["spec"]["replicas"] >= 1
            and all(s["spec"]["replicas"] == 0 and not s["status"].get("replicas") for s in others)
        )

    kube.wait_for(
        settled,
        f"{deployment} rolled to the ReplicaSet of revision {revision}",
        namespace=namespace,
    )
