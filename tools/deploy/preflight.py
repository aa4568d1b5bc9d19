"""What `make deploy` checks before `pulumi up`, each check stopping with one sentence that names
what is missing: the CLIs, credentials, an administrator of the target account, a way to the
API server, and the image to release.

Every check takes a `Shell` (runs a command, returns its exit code and output) so that tests
drive it without the AWS CLI or an account; `make deploy` passes the real one.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from infra.config import StackConfig
from infra.network import plan_subnets
from infra.program import PHASES, REPOSITORY

# What the first `pulumi up` creates, one action per service: a principal allowed all of
# them administers the account for this purpose (the simulation evaluates the principal's
# identity-based policies and permissions boundary: https://docs.aws.amazon.com/IAM/latest/
# APIReference/API_SimulatePrincipalPolicy.html).
ADMIN_ACTIONS = (
    "ec2:CreateVpc",
    "eks:CreateCluster",
    "iam:CreateRole",
    "iam:PassRole",
    "kms:CreateKey",
    "rds:CreateDBInstance",
    "elasticache:CreateReplicationGroup",
    "s3:CreateBucket",
    "ecr:CreateRepository",
    "secretsmanager:CreateSecret",
)
# AWS's own "what is my address" service, the one EKS's documentation points at for
# publicAccessCidrs.
CHECKIP_URL = "https://checkip.amazonaws.com"


class PreflightError(RuntimeError):
    """One sentence: what is missing and how to provide it."""


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str = ""


Shell = Callable[[Sequence[str]], Result]
Which = Callable[[str], str | None]


def real_shell(command: Sequence[str]) -> Result:
    done = subprocess.run(  # noqa: S603 - fixed argument lists, no shell
        list(command), capture_output=True, text=True, check=False, timeout=120
    )
    return Result(done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class Caller:
    account_id: str
    arn: str
    # The IAM role or user behind the session.
    principal_arn: str


def require_programs(stack: str, which: Which = shutil.which) -> None:
    if which("pulumi") is None:
        raise PreflightError(
            f"make deploy STACK={stack}: the Pulumi CLI is not installed; install it "
            "(https://www.pulumi.com/docs/install/) and run `pulumi login`."
        )
    if which("aws") is None:
        # The kubeconfig the program hands to the Kubernetes provider runs `aws eks get-token`.
        raise PreflightError(
            f"make deploy STACK={stack}: the AWS CLI v2 is not installed; the cluster's "
            "kubeconfig authenticates with `aws eks get-token` "
            "(https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)."
        )


def _principal(arn: str, shell: Shell) -> str:
    """`arn:aws:sts::<acct>:assumed-role/<name>/<session>` -> the role's ARN, path included."""
    parts = arn.split(":")
    resource = parts[5] if len(parts) > 5 else ""
    if parts[2:3] == ["sts"] and resource.startswith("assumed-role/"):
        name = resource.split("/")[1]
        found = shell(["aws", "iam", "get-role", "--role-name", name, "--output", "json"])
        if found.code == 0:
            return str(json.loads(found.out)["Role"]["Arn"])
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{name}"
    return arn


def caller_identity(stack: str, shell: Shell) -> Caller:
    found = shell(["aws", "sts", "get-caller-identity", "--output", "json"])
    if found.code != 0:
        raise PreflightError(
            f"make deploy STACK={stack}: no usable AWS credentials "
            f"({found.err.strip().splitlines()[-1] if found.err.strip() else 'sts failed'}); "
            "set AWS_PROFILE or sign in (aws sso login) for the target account."
        )
    identity = json.loads(found.out)
    arn = str(identity["Arn"])
    return Caller(str(identity["Account"]), arn, _principal(arn, shell))


def require_admin(stack: str, caller: Caller, shell: Shell) -> None:
    simulated = shell(
        [
            "aws",
            "iam",
            "simulate-principal-policy",
            "--policy-source-arn",
            caller.principal_arn,
            "--action-names",
            *ADMIN_ACTIONS,
            "--output",
            "json",
        ]
    )
    if simulated.code != 0:
        raise PreflightError(
            f"make deploy STACK={stack}: {caller.principal_arn} cannot be checked as an "
            f"administrator of account {caller.account_id} (iam:SimulatePrincipalPolicy "
            "refused); deploy as an administrator of the target account."
        )
    results = json.loads(simulated.out)["EvaluationResults"]
    denied = [r["EvalActionName"] for r in results if r["EvalDecision"] != "allowed"]
    if denied:
        raise PreflightError(
            f"make deploy STACK={stack}: {caller.principal_arn} is not an administrator of "
            f"account {caller.account_id} (denied: {', '.join(denied)}); deploy as one."
        )


def _addresses(shell: Shell) -> list[str]:
    found = shell(["hostname", "-I"])
    return found.out.split() if found.code == 0 else []


def _inside(addresses: Iterable[str], cidrs: Iterable[str]) -> list[str]:
    networks = [ipaddress.ip_network(cidr) for cidr in cidrs]
    inside = []
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        if any(ip in network for network in networks):
            inside.append(address)
    return inside


def require_api_access(stack: str, config: StackConfig, phase: str, shell: Shell) -> None:
    """B1: the Kubernetes phase reaches the API server from here."""
    if phase != "all":
        return
    access = config.cluster.endpoint_access
    if access.mode == "publicCidrs":
        found = shell(["curl", "--silent", "--fail", "--max-time", "10", CHECKIP_URL])
        address = found.out.strip()
        if found.code != 0 or not address:
            raise PreflightError(
                f"make deploy STACK={stack}: cannot learn this machine's public address from "
                f"{CHECKIP_URL} to check it against cluster.endpointAccess.publicCidrs."
            )
        if not _inside([address], access.public_cidrs):
            raise PreflightError(
                f"make deploy STACK={stack}: this machine's address {address} is not in "
                f"cluster.endpointAccess.publicCidrs {access.public_cidrs}; add it "
                "(pulumi config set --path ...) or deploy from a listed network."
            )
        return
    runners = list(access.runner_cidrs) or list(plan_subnets(config.network.cidr).private)
    addresses = _addresses(shell)
    if not _inside(addresses, runners):
        raise PreflightError(
            f"make deploy STACK={stack}: the API server is private and this machine "
            f"({', '.join(addresses) or 'no address'}) is outside the runner subnets "
            f"{runners}; run PHASE=cloud from here and the rest on the in-VPC runner "
            "(docs/deploy.md)."
        )


def require_image(
    stack: str,
    config: StackConfig,
    caller: Caller,
    phase: str,
    shell: Shell,
    *,
    tag: str,
    digest: str | None,
) -> str:
    """B5: the image to release is in the stack's repository; returns its digest."""
    if phase != "all":
        return digest or ""
    repository = f"{config.name}/{REPOSITORY}"
    found = shell(
        [
            "aws",
            "ecr",
            "describe-images",
            "--registry-id",
            caller.account_id,
            "--repository-name",
            repository,
            "--image-ids",
            f"imageTag={tag}",
            "--region",
            config.region,
            "--output",
            "json",
        ]
    )
    if found.code != 0:
        raise PreflightError(
            f"make deploy STACK={stack}: the image {repository}:{tag} is not in ECR in "
            f"{config.region}; run `make deploy STACK={stack} PHASE=cloud` if the repository "
            "does not exist yet, then push the image (docs/deploy.md)."
        )
    held = str(json.loads(found.out)["imageDetails"][0]["imageDigest"])
    if digest and digest != held:
        raise PreflightError(
            f"make deploy STACK={stack}: ECR holds {held} for {repository}:{tag}, not "
            f"IMAGE_DIGEST {digest}; deploy the digest the image build printed."
        )
    return held


def require_phase(stack: str, phase: str, deployed_phase: str | None) -> None:
    if phase not in PHASES:
        raise PreflightError(
            f"make deploy STACK={stack}: PHASE={phase} is not a phase ({', '.join(PHASES)})."
        )
    if phase == "cloud" and deployed_phase == "all":
        raise PreflightError(
            f"make deploy STACK={stack}: the stack already runs its Kubernetes part; a "
            "PHASE=cloud run would delete it, so deploy with PHASE=all."
        )
