"""`make deploy STACK=<stack> [PHASE=cloud|all] [IMAGE_TAG=... IMAGE_DIGEST=...]`: the preflight,
then `pulumi up --policy-pack policies`, so the pack guards every real deploy.

PHASE=cloud creates the AWS resources only (first deploy of an account: the registry to push
to; with a private endpoint, all that runs from outside the VPC); PHASE=all (the default) adds
the Kubernetes part. IMAGE_TAG/IMAGE_DIGEST pin the release to what CI built and pushed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from infra.config import StackConfigError, parse_stack_config
from infra.program import PHASE_VARIABLE
from tools.deploy.preflight import (
    PreflightError,
    Shell,
    Which,
    caller_identity,
    real_shell,
    require_admin,
    require_api_access,
    require_image,
    require_phase,
    require_programs,
)
from tools.kit.programs import REPO_ROOT
from tools.plan.budget import write_policy_config
from tools.plan.offline import stack_config_values

POLICY_PACK = "policies"


def _stacks(root: Path) -> list[str]:
    return sorted(p.stem.removeprefix("Pulumi.") for p in root.glob("Pulumi.*.yaml"))


def preflight(
    stack: str,
    phase: str,
    *,
    image_tag: str | None,
    image_digest: str | None,
    shell: Shell,
    which: Which,
    root: Path = REPO_ROOT,
) -> list[list[str]]:
    """Check everything; return the commands that deploy (config pins, then `pulumi up`)."""
    if stack not in _stacks(root):
        raise PreflightError(
            f"make deploy: no stack file Pulumi.{stack}.yaml; the stacks: "
            f"{', '.join(_stacks(root))}."
        )
    require_programs(stack, which)
    values, _ = stack_config_values(stack, root)
    try:
        config = parse_stack_config(stack, values)
    except StackConfigError as error:
        raise PreflightError(f"make deploy STACK={stack}: {error}") from None
    caller = caller_identity(stack, shell)
    require_admin(stack, caller, shell)
    output = shell(["pulumi", "stack", "output", "deployPhase", "--stack", stack])
    require_phase(stack, phase, output.out.strip() if output.code == 0 else None)
    require_api_access(stack, config, phase, shell)
    tag = image_tag or config.release.image.tag
    digest = require_image(stack, config, caller, phase, shell, tag=tag, digest=image_digest)
    commands: list[list[str]] = []
    if image_tag or image_digest:
        for key, value in (("tag", tag), ("digest", digest)):
            commands.append(
                [
                    "pulumi",
                    "config",
                    "set",
                    "--stack",
                    stack,
                    "--path",
                    f"agent-platform:release.image.{key}",
                    value,
                ]
            )
    commands.append(["pulumi", "up", "--stack", stack, "--policy-pack", POLICY_PACK])
    return commands


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make deploy")
    parser.add_argument("stack")
    parser.add_argument("--phase", default="all")
    parser.add_argument("--image-tag")
    parser.add_argument("--image-digest")
    parser.add_argument("--yes", action="store_true", help="no confirmation (CI)")
    args = parser.parse_args(argv)
    try:
        commands = preflight(
            args.stack,
            args.phase,
            image_tag=args.image_tag or None,
            image_digest=args.image_digest or None,
            shell=real_shell,
            which=shutil.which,
        )
    except PreflightError as error:
        print(error, file=sys.stderr)
        return 2
    environment = {**os.environ, PHASE_VARIABLE: args.phase}
    *pins, up = commands
    for command in pins:
        if real_shell(command).code != 0:
            print(f"make deploy STACK={args.stack}: `{' '.join(command)}` failed.", file=sys.stderr)
            return 1
    # The stack's budget for stack-monthly-budget, as `make plan` judged it.
    policy_config = write_policy_config(
        args.stack, REPO_ROOT / "build" / "deploy" / args.stack / "policy-config.json"
    )
    if policy_config is not None:
        up += ["--policy-pack-config", str(policy_config)]
    if args.yes:
        up.append("--yes")
    os.chdir(REPO_ROOT)
    os.execvpe(up[0], up, environment)  # noqa: S606 - the Pulumi CLI, fixed arguments


if __name__ == "__main__":
    sys.exit(main())
