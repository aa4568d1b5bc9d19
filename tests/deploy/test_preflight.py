"""`make deploy`'s preflight: each thing a first deploy lacks stops it with one sentence that
names it, before `pulumi up`; with everything in place the deploy runs the pack."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tools.deploy.preflight import ADMIN_ACTIONS, PreflightError, Result, Which
from tools.deploy.run import preflight
from tools.kit.programs import REPO_ROOT

ACCOUNT = "406812953771"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/platform/deployer"
DIGEST = "sha256:" + "ab" * 32
# In prod's private subnets (10.30.0.0/18 ...): where its in-VPC runner runs.
RUNNER_ADDRESS = "10.30.1.20"


@dataclass
class FakeAws:
    """Answers the commands the preflight runs as the AWS CLI would for one account."""

    denied: list[str] = field(default_factory=list)
    credentials: bool = True
    image_digest: str | None = DIGEST
    addresses: str = RUNNER_ADDRESS
    public_address: str = "198.51.100.7"
    deployed_phase: str | None = None
    calls: list[list[str]] = field(default_factory=list)

    def __call__(self, command: Sequence[str]) -> Result:
        command = list(command)
        self.calls.append(command)
        joined = " ".join(command)
        if joined.startswith("aws sts get-caller-identity"):
            if not self.credentials:
                return Result(255, "", "Unable to locate credentials. You can configure ...")
            return Result(0, json.dumps({"Account": ACCOUNT, "Arn": SESSION, "UserId": "AROA:ci"}))
        if joined.startswith("aws iam get-role"):
            return Result(0, json.dumps({"Role": {"Arn": ROLE}}))
        if joined.startswith("aws iam simulate-principal-policy"):
            assert command[command.index("--policy-source-arn") + 1] == ROLE
            results = [
                {
                    "EvalActionName": a,
                    "EvalDecision": "implicitDeny" if a in self.denied else "allowed",
                }
                for a in ADMIN_ACTIONS
            ]
            return Result(0, json.dumps({"EvaluationResults": results}))
        if joined.startswith("pulumi stack output deployPhase"):
            if self.deployed_phase is None:
                return Result(255, "", "error: no stack output")
            return Result(0, self.deployed_phase + "\n")
        if joined.startswith("hostname -I"):
            return Result(0, self.addresses + "\n")
        if joined.startswith("curl"):
            return Result(0, self.public_address + "\n")
        if joined.startswith("aws ecr describe-images"):
            if self.image_digest is None:
                return Result(254, "", "An error occurred (ImageNotFoundException)")
            return Result(0, json.dumps({"imageDetails": [{"imageDigest": self.image_digest}]}))
        raise AssertionError(f"unexpected command {joined}")


def _installed(name: str) -> str | None:
    return f"/usr/local/bin/{name}"


def _run(
    aws: FakeAws,
    stack: str = "prod",
    phase: str = "all",
    *,
    image_tag: str | None = None,
    image_digest: str | None = None,
    which: Which = _installed,
) -> list[list[str]]:
    return preflight(
        stack, phase, image_tag=image_tag, image_digest=image_digest, shell=aws, which=which
    )


def _stopped(
    aws: FakeAws,
    stack: str = "prod",
    phase: str = "all",
    *,
    image_tag: str | None = None,
    image_digest: str | None = None,
    which: Which = _installed,
) -> str:
    with pytest.raises(PreflightError) as caught:
        _run(aws, stack, phase, image_tag=image_tag, image_digest=image_digest, which=which)
    message = str(caught.value)
    # One sentence, ending where it ends: what is missing and what to do.
    assert message.endswith(".")
    assert ". " not in re.sub(r"\([^)]*\)", "", message)  # quoted CLI errors aside
    return message


def test_a_ready_deploy_runs_pulumi_up_with_the_pack() -> None:
    aws = FakeAws()
    commands = _run(aws)
    assert commands == [["pulumi", "up", "--stack", "prod", "--policy-pack", "policies"]]


def test_a_ci_deploy_pins_the_built_image_first() -> None:
    commands = _run(FakeAws(), image_tag="3f2a9c1", image_digest=DIGEST)
    assert commands[:2] == [
        [
            "pulumi",
            "config",
            "set",
            "--stack",
            "prod",
            "--path",
            "agent-platform:release.image.tag",
            "3f2a9c1",
        ],
        [
            "pulumi",
            "config",
            "set",
            "--stack",
            "prod",
            "--path",
            "agent-platform:release.image.digest",
            DIGEST,
        ],
    ]
    assert commands[2][:2] == ["pulumi", "up"]


@pytest.mark.parametrize(("missing", "named"), [("pulumi", "Pulumi CLI"), ("aws", "AWS CLI v2")])
def test_a_missing_cli_is_named(missing: str, named: str) -> None:
    def which(name: str) -> str | None:
        return None if name == missing else _installed(name)

    message = _stopped(FakeAws(), which=which)
    assert named in message
    assert message.startswith("make deploy STACK=prod: ")


def test_missing_credentials_are_named() -> None:
    message = _stopped(FakeAws(credentials=False))
    assert "no usable AWS credentials (Unable to locate credentials" in message
    assert "AWS_PROFILE" in message


def test_a_caller_who_is_not_an_admin_is_stopped() -> None:
    message = _stopped(FakeAws(denied=["iam:CreateRole", "eks:CreateCluster"]))
    assert f"{ROLE} is not an administrator of account {ACCOUNT}" in message
    assert "denied: eks:CreateCluster, iam:CreateRole" in message


def test_the_kubernetes_phase_from_outside_the_vpc_is_stopped() -> None:
    message = _stopped(FakeAws(addresses="192.168.1.10"))
    assert "the API server is private and this machine (192.168.1.10) is outside" in message
    assert "PHASE=cloud" in message
    # The cloud phase needs no way into the cluster and no image yet.
    assert _run(FakeAws(addresses="192.168.1.10", image_digest=None), phase="cloud")


def test_a_public_endpoint_must_list_the_deployers_address(tmp_path: Path) -> None:
    document = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["agent-platform:cluster"]["endpointAccess"] = {
        "mode": "publicCidrs",
        "publicCidrs": ["203.0.113.0/24"],
    }
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(document))

    def deploy(aws: FakeAws) -> list[list[str]]:
        return preflight(
            "dev",
            "all",
            image_tag=None,
            image_digest=None,
            shell=aws,
            which=_installed,
            root=tmp_path,
        )

    with pytest.raises(PreflightError, match=r"address 198.51.100.7 is not in cluster.endpoint"):
        deploy(FakeAws())
    assert deploy(FakeAws(public_address="203.0.113.9"))


def test_a_missing_image_is_named() -> None:
    message = _stopped(FakeAws(image_digest=None))
    assert "the image agent-prod/langgraph-agent:0.1.0 is not in ECR in eu-west-1" in message
    assert "PHASE=cloud" in message


def test_a_digest_ecr_does_not_hold_for_the_tag_is_named() -> None:
    other = "sha256:" + "cd" * 32
    message = _stopped(FakeAws(), image_tag="3f2a9c1", image_digest=other)
    assert (
        f"ECR holds {DIGEST} for agent-prod/langgraph-agent:3f2a9c1, not IMAGE_DIGEST {other}"
        in message
    )


def test_a_cloud_run_never_deletes_a_deployed_kubernetes_part() -> None:
    message = _stopped(FakeAws(deployed_phase="all"), phase="cloud")
    assert "PHASE=cloud run would delete it" in message
    assert "not a phase" in _stopped(FakeAws(), phase="everything")


def test_an_unknown_stack_lists_the_stacks() -> None:
    message = _stopped(FakeAws(), "qa")
    assert message == (
        "make deploy: no stack file Pulumi.qa.yaml; the stacks: dev, prod, prod-dr, staging."
    )
