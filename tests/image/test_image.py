"""The built service image, run as the chart runs it, against a throw-away PostgreSQL on
loopback; the smoke suite runs inside it through testinfra's podman backend."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from cryptography import x509
from langgraph_sdk import get_sync_client

from infra.config import DatabaseConfig, parse_stack_config
from tests.image.conftest import KEY, SECRETS_IN_CONTAINER, Container, launch, run_once
from tests.infra.support import STACKS
from tools.image.build import REPOSITORY, SIZE_BUDGET_MB, UNPINNED_REPOSITORY, ImageReport
from tools.image.podman import Podman
from tools.image.rds_ca import LABEL, LABEL_SHA256, PINNED, STAGED, pinned_sha256
from tools.kit.programs import REPO_ROOT
from tools.kit.servers import PostgresServer
from tools.plan.offline import stack_config_values

# The first test builds the image (session fixture): from an empty image store that includes the
# Debian bootstrap, about 4 minutes on 2 shared cores, hence more than the suite's 300 s.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

BUNDLE_IN_IMAGE = str(DatabaseConfig.model_fields["ssl_root_cert"].default)
# What the service does on SIGTERM as the container's PID 1, after its graceful shutdown
# (docs/service-interface.md): uvicorn re-raises SIGTERM, and the kernel drops a signal sent by a
# process to its own PID-1 namespace init when no handler is installed (signal(7) / pid_namespaces
# (7)), so the process returns from main and exits 0.
EXIT_STATUS_ON_SIGTERM = 0

INSPECT_FILESYSTEM = """
import json, os, pathlib, shutil
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(),
    "programs": [p for p in ("gcc", "cc", "c++", "g++", "make", "cpp", "ld", "as", "pip", "uv")
                 if shutil.which(p)],
    "apt_lists": os.listdir("/var/lib/apt/lists"),
    "apt_debs": [n for n in os.listdir("/var/cache/apt/archives") if n.endswith(".deb")],
    "mnt": os.listdir("/mnt"),
    # Bytecode of another interpreter would have come from the host through the build context.
    "foreign_pyc": [str(p) for p in pathlib.Path("/opt/venv").rglob("*.pyc")
                    if ".cpython-313." not in p.name][:5],
}))
"""


def _rds_majors() -> dict[str, int]:
    majors = {}
    for stack in STACKS:
        config = parse_stack_config(stack, stack_config_values(stack)[0])
        majors[stack] = int(config.database.engine_version.split(".")[0])
    return majors


def test_the_image_config_is_the_documented_one(pm: Podman, image: ImageReport) -> None:
    info = pm.inspect(image.ref)
    config = info["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["agent-service"]
    assert config["Cmd"] == ["serve"]
    health = info.get("Healthcheck")
    assert health, "HEALTHCHECK lost: build with --format docker"
    assert health["Test"][0] == "CMD"
    assert "/health" in " ".join(health["Test"])
    assert image.size_mb <= SIZE_BUDGET_MB


def test_non_root_without_compilers_apt_lists_or_build_mounts(
    pm: Podman, image: ImageReport
) -> None:
    found = json.loads(run_once(pm, image, "python", "-c", INSPECT_FILESYSTEM))
    assert (found["uid"], found["gid"]) == (10001, 10001)
    assert found["programs"] == []
    assert found["apt_lists"] in ([], ["partial"])
    assert found["apt_debs"] == []
    # The host CA directory is mounted over /mnt during the build only.
    assert found["mnt"] == []
    assert found["foreign_pyc"] == []


def test_the_image_carries_exactly_the_rds_bundle_it_was_built_with(
    pm: Podman, image: ImageReport
) -> None:
    carried = run_once(pm, image, "sha256sum", BUNDLE_IN_IMAGE).split()[0]
    assert carried == image.rds_ca_sha256
    assert hashlib.sha256(STAGED.read_bytes()).hexdigest() == image.rds_ca_sha256
    labels = pm.inspect(image.ref)["Config"]["Labels"]
    assert labels[LABEL] == image.rds_ca
    assert labels[LABEL_SHA256] == image.rds_ca_sha256
    if image.rds_ca == PINNED:
        assert image.rds_ca_sha256 == pinned_sha256()
        assert image.ref.startswith(f"{REPOSITORY}:")
    else:
        # A test image: never under the release repository, never the pinned bundle.
        assert image.ref.startswith(f"{UNPINNED_REPOSITORY}:")
        assert image.rds_ca_sha256 != pinned_sha256()


def test_the_pinned_bundle_has_a_root_for_every_stacks_region(
    pm: Podman, image: ImageReport
) -> None:
    if image.rds_ca != PINNED:
        pytest.skip(
            "built with the tests' throw-away CA (AWS's bundle is not reachable here; set "
            "RDS_CA_BUNDLE to a copy to run this): it holds no Amazon RDS root by design"
        )
    bundle = run_once(pm, image, "cat", BUNDLE_IN_IMAGE).encode()
    names = {cert.subject.rfc4514_string() for cert in x509.load_pem_x509_certificates(bundle)}
    for stack in STACKS:
        config = parse_stack_config(stack, stack_config_values(stack)[0])
        regions = {config.region, config.backups.replica_region} - {None}
        for region in regions:
            assert any(f"CN=Amazon RDS {region} Root CA RSA2048 G1" in n for n in names), region


def test_the_release_gate_refuses_a_test_image_and_passes_a_pinned_one(
    pm: Podman, image: ImageReport
) -> None:
    gate = subprocess.run(
        [sys.executable, "-m", "tools.image.release", image.ref],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if image.rds_ca == PINNED:
        assert gate.returncode == 0, gate.stderr
    else:
        assert gate.returncode == 1, gate.stdout + gate.stderr
        assert f"{LABEL}=unpinned" in gate.stderr
        assert "Traceback" not in gate.stderr


def test_pg_dump_is_new_enough_for_every_stacks_rds(pm: Podman, image: ImageReport) -> None:
    version = run_once(pm, image, "pg_dump", "--version")
    major = int(re.search(r"\(PostgreSQL\) (\d+)", version).group(1))  # type: ignore[union-attr]
    # pg_dump refuses to dump a server of a newer major version than its own.
    assert all(major >= rds for rds in _rds_majors().values()), (version, _rds_majors())


@dataclass
class Served:
    container: Container
    ready_before_migrate: httpx.Response
    migrations: list[subprocess.CompletedProcess[str]]
    database_url: str


@pytest.fixture(scope="module")
def served(
    pm: Podman, image: ImageReport, postgres_server: PostgresServer, tmp_path_factory: Any
) -> Iterator[Served]:
    database_url = postgres_server.create_database("image_test")
    env = {"DATABASE_URL": database_url, "WORKERS": "2"}
    container = launch(pm, image, tmp_path_factory.mktemp("served"), env=env, healthcheck=True)
    try:
        before = container.wait_ready(want=503)
        migrate = [
            "run",
            "--rm",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--cap-drop=ALL",
            "--network",
            "host",
            "--health-cmd",
            "none",
            "--env",
            f"DATABASE_URL={database_url}",
            image.ref,
            "migrate",
        ]
        migrations = [pm.run(*migrate, check=False) for _ in range(2)]
        container.wait_ready()
        yield Served(container, before, migrations, database_url)
    finally:
        container.remove()


def test_ready_is_503_until_migrate_has_run(served: Served) -> None:
    assert served.ready_before_migrate.status_code == 503
    assert "migrat" in served.ready_before_migrate.text


def test_migrate_is_idempotent(served: Served) -> None:
    for done in served.migrations:
        assert done.returncode == 0, done.stderr[-2000:]
    assert httpx.get(f"{served.container.url}/ready", timeout=5).status_code == 200


def test_one_authenticated_run_through_the_langgraph_sdk(served: Served) -> None:
    refused = httpx.post(f"{served.container.url}/threads", json={}, timeout=10)
    assert refused.status_code == 401, refused.text
    client = get_sync_client(url=served.container.url, api_key=KEY)
    thread = client.threads.create()
    result = client.runs.wait(
        thread["thread_id"],
        "main_agent",
        input=cast(Any, {"messages": [{"role": "user", "content": "hello from the image test"}]}),
    )
    assert isinstance(result, dict), result
    assert result["messages"][-1]["type"] == "ai", result


def test_two_workers_serve(served: Served) -> None:
    children = served.container.exec(
        "python",
        "-c",
        "import pathlib; print(sum(1 for p in pathlib.Path('/proc').glob('[0-9]*/stat') "
        "if p.read_text().rsplit(')', 1)[1].split()[1] == '1'))",
    )
    assert children.returncode == 0, children.stderr
    # uvicorn's supervisor is PID 1; WORKERS=2 gives it two worker processes (and
    # multiprocessing's resource tracker at most).
    assert int(children.stdout) in (2, 3), children.stdout


def test_pg_dump_in_the_image_dumps_the_migrated_database(served: Served) -> None:
    dump = served.container.exec("pg_dump", "--schema-only", served.database_url)
    assert dump.returncode == 0, dump.stderr
    assert len(re.findall(r"(?m)^CREATE TABLE ", dump.stdout)) >= 5


def test_the_healthcheck_passes(pm: Podman, served: Served) -> None:
    checked = pm.run("healthcheck", "run", served.container.name, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_smoke_suite_passes_inside_the_container(
    pm: Podman, served: Served, tmp_path: Path
) -> None:
    env_file = tmp_path / "smoke.env"
    env_file.write_text(
        f"SMOKE_PORT={served.container.port}\nSMOKE_SECRETS_DIR={SECRETS_IN_CONTAINER}\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/smoke",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--hosts=podman://{served.container.name}",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, **pm.env, "SMOKE_ENV_FILE": str(env_file)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # Every smoke test ran (none skipped on this backend).
    assert re.search(r"\b\d+ passed", result.stdout), result.stdout[-2000:]
    assert "skipped" not in result.stdout, result.stdout[-2000:]


def test_sigterm_exit_status_is_the_documented_one(
    pm: Podman, image: ImageReport, tmp_path: Path
) -> None:
    container = launch(pm, image, tmp_path)
    try:
        container.wait_ready()
        assert container.terminate() == EXIT_STATUS_ON_SIGTERM, container.logs()[-3000:]
        assert "Application shutdown complete." in container.logs()
    finally:
        container.remove()


def test_sigterm_lets_the_in_flight_run_finish(
    pm: Podman, image: ImageReport, tmp_path: Path
) -> None:
    # The tests' echo graph (its `delay` keeps a run in flight) served by the kit's launcher (the
    # service's own uvicorn runner) on the image's python as PID 1: tests/ and tools/ are mounted
    # read-only, the image is unchanged.
    container = launch(
        pm,
        image,
        tmp_path,
        "-m",
        "tools.kit.launcher",
        "tests.app.server.graphs:echo_graph_source",
        env={"PYTHONPATH": "/opt/agent-tests", "WORKERS": "2"},
        extra=(
            "--volume",
            f"{REPO_ROOT / 'tests'}:/opt/agent-tests/tests:ro",
            "--volume",
            f"{REPO_ROOT / 'tools'}:/opt/agent-tests/tools:ro",
            "--entrypoint",
            "python",
        ),
    )
    try:
        container.wait_ready()
        headers = {"X-API-Key": KEY}
        thread_id = httpx.post(f"{container.url}/threads", json={}, headers=headers).json()[
            "thread_id"
        ]
        answer: dict[str, Any] = {}

        def run() -> None:
            response = httpx.post(
                f"{container.url}/threads/{thread_id}/runs/wait",
                json={
                    "assistant_id": "echo_agent",
                    "input": {"messages": [{"role": "user", "content": "drain me"}]},
                    "config": {"configurable": {"delay": 4}},
                },
                headers=headers,
                timeout=60,
            )
            answer["status"] = response.status_code
            answer["body"] = response.json()

        waiter = threading.Thread(target=run)
        waiter.start()
        # SIGTERM only once the run is in flight (its thread is busy), however slow the machine.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            thread = httpx.get(f"{container.url}/threads/{thread_id}", headers=headers).json()
            if thread["status"] == "busy":
                break
            time.sleep(0.1)
        assert thread["status"] == "busy", thread
        assert container.terminate() == EXIT_STATUS_ON_SIGTERM, container.logs()[-3000:]
        waiter.join(30)
        assert answer.get("status") == 200, (answer, container.logs()[-3000:])
        assert "drain me" in json.dumps(answer["body"])
    finally:
        container.remove()
