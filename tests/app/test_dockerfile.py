"""The service image's Dockerfile, checked without a Docker engine: checkov's Dockerfile
checks with zero failures, plus the properties checkov does not look at."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tools.kit.programs import require_program

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "app" / "Dockerfile"


def _stages() -> list[str]:
    return re.split(r"(?m)^FROM ", DOCKERFILE.read_text())[1:]


def test_checkov_dockerfile_checks_pass() -> None:
    result = subprocess.run(
        [
            require_program("checkov"),
            "-f",
            str(DOCKERFILE),
            "--framework",
            "dockerfile",
            "--output",
            "json",
            "--skip-download",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    report = json.loads(result.stdout)
    failed = report["results"]["failed_checks"] if "results" in report else []
    assert [f"{c['check_id']}: {c['check_name']}" for c in failed] == []
    assert report["summary"]["passed"] > 0
    assert result.returncode == 0, result.stderr[-2000:]


def test_final_stage_is_non_root_without_build_tools() -> None:
    final = _stages()[-1]
    # The same Debian base as the build stage, passed as the BASE argument (docs/image.md).
    assert final.startswith("${BASE} AS runtime")
    assert "USER 10001:10001" in final
    assert "--uid 10001 --gid 10001" in final
    assert "postgresql-client-17" in final
    for tool in ("build-essential", "gcc", "uv ", "/uv", "pip install"):
        assert tool not in final, tool
    assert 'ENTRYPOINT ["agent-service"]' in final
    assert 'CMD ["serve"]' in final
    assert "HEALTHCHECK" in final
    # Read-only root filesystem: every writable path is under /tmp.
    assert "HOME=/tmp" in final
    assert "SQLITE_PATH=/tmp/" in final


def test_build_installs_only_the_locked_service_group() -> None:
    build = _stages()[0]
    syncs = [line for line in build.splitlines() if "uv sync" in line]
    assert syncs
    assert all("--locked" in s and "--no-default-groups --group service" in s for s in syncs)


def test_the_image_carries_the_ca_bundle_database_urls_verify_against() -> None:
    from infra.config import DatabaseConfig

    default = DatabaseConfig.model_fields["ssl_root_cert"].default
    dockerfile = (REPO_ROOT / "app" / "Dockerfile").read_text()
    assert f"COPY --from=build /tmp/certs/rds-global-bundle.pem {default}" in dockerfile


def test_the_rds_bundle_is_checked_against_the_pin_unless_labelled_a_test_image() -> None:
    build, runtime = _stages()
    # Pinned is the default: only an explicit RDS_CA=unpinned skips the check (tools/image).
    assert "ARG RDS_CA=pinned" in build
    assert "pinned) sha256sum --check --strict rds-global-bundle.pem.sha256 ;;" in build
    assert "exit 1" in build.split("ARG RDS_CA=pinned", 1)[1]
    assert "build/image/rds-ca/rds-global-bundle.pem" in build
    # The final stage carries the same argument as a label, which the release gate reads.
    assert "ARG RDS_CA=pinned" in runtime
    assert "LABEL io.agent-platform.rds-ca=${RDS_CA}" in runtime
