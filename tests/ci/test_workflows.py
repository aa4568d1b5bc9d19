"""The GitHub Actions workflows: valid for actionlint (the real linter, its expression and
job-graph checks), and doing what the deploy path promises: every stack planned and previewed
with the pack on a pull request, one image pushed by digest, approvals before each deploy,
and a deploy good only when Flagger promoted the canary."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tools.kit.programs import REPO_ROOT, require_program

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
STACKS = sorted(p.stem.removeprefix("Pulumi.") for p in REPO_ROOT.glob("Pulumi.*.yaml"))


def _workflow(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return document


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job.get("steps", []))


def test_actionlint_accepts_every_workflow(tmp_path: Path) -> None:
    actionlint = require_program("actionlint")
    result = subprocess.run(
        [actionlint, "-color=false", *sorted(str(p) for p in WORKFLOWS.glob("*.yml"))],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_would_catch_a_broken_workflow(tmp_path: Path) -> None:
    """The lint can fail: an undefined job output and an unknown runner label are caught."""
    actionlint = require_program("actionlint")
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ needs.missing.outputs.x }}\n"
    )
    result = subprocess.run(
        [actionlint, "-color=false", str(broken)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 1
    assert "missing" in result.stdout


def test_a_pull_request_tests_plans_and_previews_every_stack() -> None:
    jobs = _workflow("pull-request.yml")["jobs"]
    assert "bash .ci/run" in _runs(jobs["test"])
    assert sorted(jobs["plan"]["strategy"]["matrix"]["stack"]) == STACKS
    assert "make plan STACK=${{ matrix.stack }}" in _runs(jobs["plan"])
    upload = next(s for s in jobs["plan"]["steps"] if "upload-artifact" in s.get("uses", ""))
    assert upload["with"]["path"] == "build/plan/${{ matrix.stack }}/"
    preview = jobs["preview"]
    assert sorted(preview["strategy"]["matrix"]["stack"]) == STACKS
    (pulumi,) = [s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions")]
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policies"
    # The private endpoint answers inside the VPC only: the stack's own runner previews it.
    assert "self-hosted" in preview["runs-on"]


def test_main_builds_once_and_deploys_by_digest_behind_approvals() -> None:
    jobs = _workflow("main.yml")["jobs"]
    runs = _runs(jobs["image"])
    assert runs.count("make image") == 1
    assert "docker build" not in runs
    # The release gate (tools/image/release.py) runs on the built image before any push.
    assert runs.index("make image") < runs.index("python -m tools.image.release")
    assert runs.index("python -m tools.image.release") < runs.index("docker push")
    assert "docker load --input build/image/agent-service.tar" in runs
    assert jobs["image"]["outputs"]["digest"] == "${{ steps.push.outputs.digest }}"
    staging, prod = jobs["deploy-staging"], jobs["deploy-prod"]
    for job, stack in ((staging, "staging"), (prod, "prod")):
        assert job["uses"] == "./.github/workflows/deploy.yml"
        assert job["with"]["stack"] == stack
        assert job["with"]["image-digest"] == "${{ needs.image.outputs.digest }}"
    assert "deploy-staging" in prod["needs"]


def test_a_deploy_waits_for_approval_and_the_canarys_promotion() -> None:
    job = _workflow("deploy.yml")["jobs"]["deploy"]
    # Required reviewers are configured on the GitHub environment named after the stack.
    assert job["environment"] == "${{ inputs.stack }}"
    runs = _runs(job)
    assert 'make deploy STACK="$STACK" IMAGE_TAG="$IMAGE_TAG" IMAGE_DIGEST="$IMAGE_DIGEST"' in runs
    assert "kubectl wait" in runs
    assert "--for=condition=Promoted" in runs
    assert runs.index("make deploy") < runs.index("kubectl wait")


# The token's access levels, ordered: "write includes read" (docs.github.com, "Assigning
# permissions to jobs"). A reusable workflow can only keep or downgrade the permissions of the
# caller job, never elevate them (docs.github.com, "Reusing workflows", access and permissions);
# GitHub rejects the whole run before any job starts, and actionlint does not check it.
_LEVEL = {"none": 0, "read": 1, "write": 2}


def _permissions(granted: Any) -> dict[str, int] | None:
    """A permissions value as scope -> level; None when it is absent (inherit the default)."""
    if granted is None:
        return None
    if granted in ("read-all", "write-all"):
        level = _LEVEL[str(granted).removesuffix("-all")]
        return {"*": level}
    if granted == {} or granted == "{}":
        return {}
    assert isinstance(granted, dict), granted
    return {str(scope): _LEVEL[str(level)] for scope, level in granted.items()}


def _effective(workflow: dict[str, Any], job: dict[str, Any]) -> dict[str, int] | None:
    return _permissions(job.get("permissions", workflow.get("permissions")))


def _level(granted: dict[str, int], scope: str) -> int:
    # Once any scope is listed, every unlisted scope is none.
    return granted.get(scope, granted.get("*", 0))


def _missing_permissions(caller_name: str, caller: dict[str, Any]) -> list[str]:
    missing: list[str] = []
    for job_id, job in caller["jobs"].items():
        uses = str(job.get("uses", ""))
        if not uses.startswith("./.github/workflows/"):
            continue
        called = _workflow(Path(uses).name)
        granted = _effective(caller, job)
        for called_id, called_job in called["jobs"].items():
            requested = _effective(called, called_job)
            if requested is None:
                continue
            assert granted is not None, (
                f"{caller_name} job {job_id} grants the repository default while {uses} "
                f"job {called_id} requests {requested}: state the caller's permissions"
            )
            for scope, level in requested.items():
                if _level(granted, scope) < level:
                    missing.append(f"{caller_name} {job_id} -> {called_id}: {scope}")
    return missing


def test_every_reusable_workflow_call_grants_what_the_called_jobs_request() -> None:
    for caller in sorted(p.name for p in WORKFLOWS.glob("*.yml")):
        assert _missing_permissions(caller, _workflow(caller)) == [], caller


def test_the_permission_check_catches_a_caller_that_grants_too_little() -> None:
    caller = _workflow("main.yml")
    # Without job permissions the caller job has the workflow's contents: read only.
    caller["jobs"]["deploy-prod"].pop("permissions")
    assert _missing_permissions("main.yml", caller) == ["main.yml deploy-prod -> deploy: id-token"]


def test_a_preview_never_asks_for_the_committed_image_tag() -> None:
    """No CI run pushes the stack files' release.image.tag, and the program looks the image up
    in ECR (infra/image.py): a preview takes the newest image main pushed, and previews the
    cloud phase (no release, no lookup) while the repository holds none."""
    preview = _workflow("pull-request.yml")["jobs"]["preview"]
    steps = preview["steps"]
    (pick,) = [s for s in steps if s.get("id") == "phase"]
    (pulumi,) = [s for s in steps if s.get("uses", "").startswith("pulumi/actions")]
    assert steps.index(pick) < steps.index(pulumi)
    assert pulumi["env"]["AGENT_PLATFORM_PHASE"] == "${{ steps.phase.outputs.phase }}"
    assert "aws ecr describe-images" in pick["run"]
    assert 'echo "phase=cloud"' in pick["run"]
    assert "--path agent-platform:release.image.tag" in pick["run"]
    assert 'echo "agent-$STACK/langgraph-agent"' in pick["run"]
    # The DR stack previews against the replicated repository, in its own region.
    assert "agent-platform:recovery.repositoryName" in pick["run"]
    assert '--region "$region"' in pick["run"]


def test_a_deploy_passes_the_pushed_tag_and_digest_not_the_committed_tag() -> None:
    jobs = _workflow("main.yml")["jobs"]
    pushed = _runs(jobs["image"])
    assert 'docker push "$repository:$IMAGE_TAG"' in pushed
    assert _workflow("main.yml")["env"]["IMAGE_TAG"] == "${{ github.sha }}"
    for job in (jobs["deploy-staging"], jobs["deploy-prod"]):
        assert job["with"]["image-tag"] == "${{ github.sha }}"
        assert job["with"]["image-digest"] == "${{ needs.image.outputs.digest }}"


def _uses_pulumi(step: dict[str, Any]) -> bool:
    run = str(step.get("run", ""))
    return str(step.get("uses", "")).startswith("pulumi/actions") or any(
        line.lstrip().startswith(("pulumi ", "if pulumi ", "$(pulumi ")) or "$(pulumi " in line
        for line in run.splitlines()
    )


def test_every_pulumi_step_uses_the_s3_backend_not_pulumi_cloud() -> None:
    """The state lives in the account's S3 bucket (docs/deploy.md, step 1): every step that
    runs pulumi gets PULUMI_BACKEND_URL from the GitHub variable, and no workflow asks for a
    Pulumi Cloud token (without a backend URL the CLI would log in to Pulumi Cloud)."""
    pulumi_steps = 0
    for path in sorted(WORKFLOWS.glob("*.yml")):
        assert "PULUMI_ACCESS_TOKEN" not in path.read_text(), path.name
        workflow = _workflow(path.name)
        for job_id, job in workflow["jobs"].items():
            for step in job.get("steps", []):
                if not _uses_pulumi(step) and "make deploy" not in str(step.get("run", "")):
                    continue
                pulumi_steps += 1
                env = {**workflow.get("env", {}), **job.get("env", {}), **step.get("env", {})}
                assert env.get("PULUMI_BACKEND_URL") == "${{ vars.PULUMI_BACKEND_URL }}", (
                    path.name,
                    job_id,
                    step.get("name", step.get("uses")),
                )
    # The preview's phase pick and action; the deploy's note, make deploy and canary wait.
    assert pulumi_steps >= 5
