"""The image runs Debian's python3.13 (docs/image.md: the one Debian release with a pg_dump for
RDS PostgreSQL 16), while the host suite runs on 3.11: the fast suite runs again on the image's
interpreter, in the Dockerfile's build stage (python3.13 + uv), from the same uv.lock."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tools.image.build import HOST_CA_DIR, ImageReport, build_stage
from tools.image.podman import Podman
from tools.kit.programs import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

# Inside the container: a copy of the tree (the mount is read-only), the locked groups synced into
# /tmp, then the fast tests of the Python that can run on 3.13: the service (app/, what the image
# runs), the Pulumi program and the policy pack; less the one that needs checkov from `make tools`.
SCRIPT = """
set -e
mkdir /tmp/src
tar -C /repo --exclude=./.venv --exclude=./.tools --exclude=./build --exclude=./.git -cf - . \\
  | tar -C /tmp/src -xf -
cd /tmp/src
if [ -s /mnt/ca-certificates.crt ]; then export SSL_CERT_FILE=/mnt/ca-certificates.crt; fi
# No bytecode compilation (the build stage's default): measured 116 s with it, 18 s without.
UV_COMPILE_BYTECODE=0 UV_PROJECT_ENVIRONMENT=/tmp/venv /opt/uv/bin/uv sync --locked --quiet \\
  --no-default-groups --group service --group dev --group infra --group policy
exec /tmp/venv/bin/python -m pytest -q -p no:cacheprovider -x \\
  -m "not integration and not slow and not helm" tests/app tests/infra tests/policies \\
  --deselect tests/app/test_dockerfile.py::test_checkov_dockerfile_checks_pass
"""


def _uv_cache() -> Path:
    uv = shutil.which("uv")
    assert uv, "uv not found: run `make tools`"
    found = subprocess.run([uv, "cache", "dir"], capture_output=True, text=True, check=True)
    return Path(found.stdout.strip())


def test_the_fast_suite_passes_on_the_images_python(pm: Podman, image: ImageReport) -> None:
    ref = build_stage(pm, image)
    cache = _uv_cache()
    cache.mkdir(parents=True, exist_ok=True)
    argv = ["run", "--rm", "--network", "host", "--health-cmd", "none"]
    argv += ["--tmpfs", "/tmp:rw,exec,size=4g", "--volume", f"{REPO_ROOT}:/repo:ro"]
    # uv's cache outside the clone: the cp313 wheels are downloaded once per machine.
    argv += ["--volume", f"{cache}:/uv-cache", "--env", "UV_CACHE_DIR=/uv-cache"]
    if (HOST_CA_DIR / "ca-certificates.crt").is_file():
        argv += ["--volume", f"{HOST_CA_DIR}:/mnt:ro"]
    result = pm.run(*argv, ref, "sh", "-c", SCRIPT, check=False, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
    assert "3.13" in pm.run("run", "--rm", "--health-cmd", "none", ref, "python3", "-V").stdout
