"""The pack as the Pulumi CLI runs it: `python -m pulumi.policy <engine> policies` starts
`__main__.py`, which serves the analyzer over gRPC on loopback; the CLI then asks it for
its policies and sends it resources to analyze. This test plays the CLI's part."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

# grpcio and protobuf ship no type stubs; the generated Pulumi messages carry their own.
import grpc  # type: ignore[import-untyped]
import pytest
from google.protobuf import empty_pb2, struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policies.registry import ALL_POLICIES
from tests.policies.support import urn

REPO_ROOT = Path(__file__).resolve().parents[2]
PACK_DIR = REPO_ROOT / "policies"

pytestmark = pytest.mark.integration


def struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(dict(values))
    return message


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    # Started from elsewhere, as the CLI does, so only the pack's own bootstrap finds its
    # modules; no Pulumi engine variables, so nothing reaches for an engine.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.pop("PYTHONPATH", None)
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(PACK_DIR)],
        cwd=tmp_path_factory.mktemp("cli"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            process.kill()
            _, stderr = process.communicate()
            pytest.fail(f"the pack did not start its analyzer: {line!r}\n{stderr}")
        with grpc.insecure_channel(f"127.0.0.1:{line}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.terminate()
        process.communicate(timeout=30)


def analyze(
    stub: analyzer_pb2_grpc.AnalyzerStub,
    type_: str,
    name: str,
    props: Mapping[str, Any],
    *,
    protect: bool = False,
) -> list[analyzer_pb2.AnalyzeDiagnostic]:
    request = analyzer_pb2.AnalyzeRequest(
        type=type_,
        urn=urn(type_, name),
        name=name,
        properties=struct(props),
        options=analyzer_pb2.AnalyzerResourceOptions(protect=protect),
    )
    return list(stub.Analyze(request).diagnostics)


def test_the_cli_sees_every_policy_at_its_level(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "agent-platform"
    levels = {policy.name: policy.enforcementLevel for policy in info.policies}
    assert len(levels) == len(ALL_POLICIES) == 45
    assert levels["stack-monthly-budget"] == analyzer_pb2.ADVISORY
    assert levels["kubernetes-image-not-latest-in-dev"] == analyzer_pb2.ADVISORY
    assert levels["rds-backup-retention"] == analyzer_pb2.MANDATORY
    retention = next(p for p in info.policies if p.name == "rds-backup-retention")
    assert retention.configSchema.properties["minBackupRetentionDays"]["default"] == 7


def test_a_violating_resource_is_reported_as_mandatory(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    props = {
        "storageEncrypted": False,
        "publiclyAccessible": False,
        "backupRetentionPeriod": 7,
        "deletionProtection": True,
        "multiAz": True,
        "tags": {"owner": "o", "environment": "prod", "cost-centre": "c"},
    }
    found = analyze(analyzer, "aws:rds/instance:Instance", "agent-prod-db", props, protect=True)
    assert [(d.policyName, d.enforcementLevel) for d in found] == [
        ("rds-storage-encrypted", analyzer_pb2.MANDATORY)
    ]
    # The CLI hands the resource's options over: an unprotected prod database is refused.
    unprotected = analyze(analyzer, "aws:rds/instance:Instance", "agent-prod-db", props)
    assert "stateful-resources-protected" in {d.policyName for d in unprotected}
    assert "'agent-prod-db' stores data unencrypted" in found[0].message


def test_configured_thresholds_reach_the_rules(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    props = {"backupRetentionPeriod": 7, "storageEncrypted": True}
    before = analyze(analyzer, "aws:rds/instance:Instance", "db", props)
    assert "rds-backup-retention" not in {d.policyName for d in before}
    config = analyzer_pb2.PolicyConfig(
        enforcementLevel=analyzer_pb2.ADVISORY,
        properties=struct({"minBackupRetentionDays": 14}),
    )
    analyzer.Configure(
        analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={"rds-backup-retention": config})
    )
    try:
        after = analyze(analyzer, "aws:rds/instance:Instance", "db", props)
        retention = [d for d in after if d.policyName == "rds-backup-retention"]
        assert [d.enforcementLevel for d in retention] == [analyzer_pb2.ADVISORY]
        assert "at least 14" in retention[0].message
    finally:
        analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest())


def test_stack_policies_run_over_the_whole_stack(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    release_type = "kubernetes:helm.sh/v3:Release"
    release = analyzer_pb2.AnalyzerResource(
        type=release_type,
        urn=urn(release_type, "agent-prod-service"),
        name="agent-prod-service",
        properties=struct(
            {"chart": "charts/langgraph-agent", "values": {"config": {"backupBucket": "gone"}}}
        ),
    )
    response = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[release]))
    wired = [d for d in response.diagnostics if d.policyName == "stack-backup-bucket-wired"]
    assert [d.urn for d in wired] == ["", release.urn]
    assert "no S3 bucket for database backups" in wired[0].message


def test_the_budget_reaches_the_served_pack(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    cluster_type = "aws:eks/cluster:Cluster"
    cluster = analyzer_pb2.AnalyzerResource(
        type=cluster_type,
        urn=urn(cluster_type, "agent-prod-eks"),
        name="agent-prod-eks",
        properties=struct({"version": "1.33"}),
    )
    config = analyzer_pb2.PolicyConfig(
        enforcementLevel=analyzer_pb2.MANDATORY,
        properties=struct({"monthlyBudgetUsd": 100, "pricingDate": "2026-11-30"}),
    )
    analyzer.Configure(
        analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={"stack-monthly-budget": config})
    )
    try:
        response = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[cluster]))
        found = [d for d in response.diagnostics if d.policyName == "stack-monthly-budget"]
        assert [d.enforcementLevel for d in found] == [analyzer_pb2.MANDATORY]
        assert "exceeds the budget $100" in found[0].message
        assert "agent-prod-eks (Cluster) $438" in found[0].message
    finally:
        analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest())
