"""The service image, built once per session by `make image`'s own code (podman's layer cache
and the bootstrapped base make a rebuild of an unchanged tree take seconds), and containers of it
run the way the chart runs the pod: uid 10001 from the image, read-only root filesystem, a tmpfs
/tmp, every capability dropped, no privilege escalation. Host networking: the throw-away
PostgreSQL and the service both listen on loopback only."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tools.image.build import ImageReport, build, podman
from tools.image.podman import Podman
from tools.kit.ports import free_port

KEY = "image-test-key-0123456789abcdef"
SECRETS_IN_CONTAINER = "/run/secrets/agent-service"
HARDENED = [
    "--read-only",
    "--tmpfs",
    "/tmp:rw,mode=1777,size=256m",
    "--cap-drop=ALL",
    "--security-opt",
    "no-new-privileges",
    "--network",
    "host",
]


@pytest.fixture(scope="session")
def pm() -> Podman:
    return podman()


def throwaway_ca(path: Path) -> Path:
    """A self-signed CA certificate that is no Amazon RDS root: what the test image carries
    where AWS's bundle cannot be downloaded (this kind of machine)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "agent-platform image test CA (not Amazon RDS)")]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> ImageReport:
    """Built with AWS's bundle when RDS_CA_BUNDLE names a copy (checked against the pin, as
    `make image` does); else with a throw-away CA, explicitly unpinned: the image is labelled
    as a test image and kept under its own repository (docs/image.md)."""
    # save=False: the tarball and SBOM are make image's outputs; the test needs the image only.
    given = os.environ.get("RDS_CA_BUNDLE")
    if given:
        return build(save=False, rds_ca_bundle=Path(given))
    bundle = throwaway_ca(tmp_path_factory.mktemp("rds-ca") / "test-ca.pem")
    return build(save=False, rds_ca_bundle=bundle, rds_ca_unpinned=True)


@dataclass
class Container:
    pm: Podman
    name: str
    port: int
    secrets: Path
    started: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        result = self.pm.run("logs", self.name, check=False)
        return result.stdout + result.stderr

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return self.pm.run("exec", self.name, *command, check=False)

    def wait_ready(self, timeout: float = 90.0, want: int = 200) -> httpx.Response:
        deadline = time.monotonic() + timeout
        last: httpx.Response | None = None
        while time.monotonic() < deadline:
            try:
                last = httpx.get(f"{self.url}/ready", timeout=5)
                if last.status_code == want:
                    return last
            except httpx.TransportError:
                pass
            if self.state() != "running":
                break
            time.sleep(0.5)
        raise AssertionError(f"/ready never answered {want} (last: {last}):\n{self.logs()[-3000:]}")

    def state(self) -> str:
        result = self.pm.run("inspect", "--format", "{{.State.Status}}", self.name, check=False)
        return result.stdout.strip()

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, as the kubelet sends it, then the container's exit status."""
        self.pm.run("kill", "--signal", "TERM", self.name)
        waited = self.pm.run("wait", self.name, timeout=timeout)
        return int(waited.stdout.strip())

    def remove(self) -> None:
        self.pm.run("rm", "--force", "--time", "0", self.name, check=False)


def write_secrets(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    keys = directory / "api_keys"
    keys.write_text(json.dumps({"alice": KEY}))
    keys.chmod(0o644)
    return directory


def launch(
    pm: Podman,
    image: ImageReport,
    directory: Path,
    *command: str,
    env: dict[str, str] | None = None,
    healthcheck: bool = False,
    extra: tuple[str, ...] = (),
) -> Container:
    """Start a hardened container of the image listening on a free loopback port."""
    port = free_port()
    container = Container(
        pm=pm,
        name=f"agent-image-test-{uuid.uuid4().hex[:8]}",
        port=port,
        secrets=write_secrets(directory / f"secrets-{port}"),
    )
    settings = {"HOST": "127.0.0.1", "PORT": str(port), **(env or {})}
    argv = ["run", "--detach", "--name", container.name, *HARDENED, *extra]
    argv += ["--volume", f"{container.secrets}:{SECRETS_IN_CONTAINER}:ro"]
    if not healthcheck:
        # podman schedules health checks with systemd timers, absent on this kind of machine.
        argv += ["--health-cmd", "none"]
    for key, value in settings.items():
        argv += ["--env", f"{key}={value}"]
    pm.run(*argv, image.ref, *command)
    return container


def run_once(pm: Podman, image: ImageReport, entrypoint: str, *args: str) -> str:
    """Run one command in a hardened container of the image; its stdout."""
    result = pm.run(
        "run",
        "--rm",
        *HARDENED,
        "--health-cmd",
        "none",
        "--entrypoint",
        entrypoint,
        image.ref,
        *args,
    )
    return result.stdout
