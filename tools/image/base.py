"""The image's base: Debian 13 from the registry, or the same release bootstrapped from the
Debian mirror where no registry answers (this kind of machine reaches the mirror and PyPI only).

The bootstrap is what the registry's `debian:<release>-slim` is made of: debootstrap's minbase
variant, Debian-signed (debootstrap checks the Release file against debian-archive-keyring), with
debuerreotype's slim settings (https://github.com/debuerreotype/debuerreotype, scripts/
debuerreotype-minimizing-config and .slimify-excludes): no docs, man pages or locales, and apt's
docker-clean hook so a package install leaves no .deb in its layer. The Dockerfile is then built
unchanged with the base as its BASE argument.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tools.image.podman import Podman, PodmanError
from tools.kit.programs import require_program

RELEASE = "trixie"
# The registry's base. Pin it by digest (`@sha256:...`) where the registry is reachable; on this
# kind of machine no registry answers, so no digest could be read here (docs/image.md).
REGISTRY_BASE = f"docker.io/library/debian:{RELEASE}-slim"
BOOTSTRAP_BASE = f"localhost/agent-platform/debian-bootstrap:{RELEASE}"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
PULL_TIMEOUT = 120.0
# A bootstrapped base is made again when older than this, so the image picks up Debian's
# security updates to the base packages (the registry's slim image is rebuilt on its own
# schedule; pin and bump its digest instead).
BOOTSTRAP_MAX_AGE = timedelta(days=7)

SLIM_EXCLUDES = """\
# Written by tools/image/base.py, after debuerreotype's slim variant.
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/groff/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/linda/*
path-exclude=/usr/share/lintian/overrides/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/man/*
"""

_CLEAN = (
    '"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb'
    ' /var/cache/apt/*.bin || true";'
)
APT_CLEAN = f"""\
// Written by tools/image/base.py, after debuerreotype's docker-clean: apt-get clean after
// every install, so the downloaded packages never stay in an image layer.
DPkg::Post-Invoke {{ {_CLEAN} }};
APT::Update::Post-Invoke {{ {_CLEAN} }};
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
"""

SOURCES = f"""\
Types: deb
URIs: http://deb.debian.org/debian
Suites: {RELEASE} {RELEASE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: {RELEASE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def ensure_base(podman: Podman, *, explicit: str | None = None, refresh: bool = False) -> str:
    """The base to build on: `explicit` (IMAGE_BASE) as given, else the registry's slim image
    when present or pullable, else the local bootstrap (made once, kept in podman's store)."""
    if explicit:
        if not podman.exists(explicit):
            podman.run("pull", explicit, timeout=PULL_TIMEOUT)
        return explicit
    if podman.exists(REGISTRY_BASE):
        return REGISTRY_BASE
    if not refresh and podman.exists(BOOTSTRAP_BASE) and _age(podman) < BOOTSTRAP_MAX_AGE:
        return BOOTSTRAP_BASE
    try:
        pulled = podman.run("pull", "--quiet", REGISTRY_BASE, check=False, timeout=PULL_TIMEOUT)
    except subprocess.TimeoutExpired:
        pulled = None
    if pulled is not None and pulled.returncode == 0:
        return REGISTRY_BASE
    print(f"image: {REGISTRY_BASE} unreachable; bootstrapping Debian {RELEASE} from {MIRROR}")
    bootstrap(podman)
    return BOOTSTRAP_BASE


def _age(podman: Podman) -> timedelta:
    # podman prints nanoseconds; fromisoformat takes at most microseconds.
    created = re.sub(r"(\.\d{6})\d*", r"\1", str(podman.inspect(BOOTSTRAP_BASE)["Created"]))
    return datetime.now(UTC) - datetime.fromisoformat(created.replace("Z", "+00:00"))


def bootstrap(podman: Podman) -> None:
    debootstrap = require_program("debootstrap")
    if os.geteuid() != 0:
        raise PodmanError("the Debian bootstrap needs root (debootstrap); or set IMAGE_BASE")
    with tempfile.TemporaryDirectory(prefix="debian-bootstrap-") as work:
        rootfs = Path(work) / "rootfs"
        subprocess.run(  # noqa: S603 - debootstrap from PATH, fixed arguments
            [debootstrap, "--variant=minbase", RELEASE, str(rootfs), MIRROR],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        _slim(rootfs)
        tar = subprocess.Popen(  # noqa: S603 - tar from PATH, fixed arguments
            [require_program("tar"), "-C", str(rootfs), "--numeric-owner", "-c", "."],
            stdout=subprocess.PIPE,
        )
        imported = subprocess.run(  # noqa: S603 - podman, fixed arguments
            podman.argv("import", "--change", 'CMD ["bash"]', "-", BOOTSTRAP_BASE),
            stdin=tar.stdout,
            env=podman.env,
            capture_output=True,
            text=True,
            check=False,
        )
        tar.wait()
        if tar.returncode != 0 or imported.returncode != 0:
            raise PodmanError(f"podman import of the bootstrap failed: {imported.stderr[-2000:]}")


def _slim(rootfs: Path) -> None:
    (rootfs / "etc/dpkg/dpkg.cfg.d/docker").write_text(SLIM_EXCLUDES)
    (rootfs / "etc/apt/apt.conf.d/docker-clean").write_text(APT_CLEAN)
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(SOURCES)
    for pattern in (
        "var/lib/apt/lists/*",
        "var/cache/apt/*.bin",
        "var/cache/apt/archives/*.deb",
        "var/log/*.log",
        "var/log/apt/*",
        "usr/share/man/*",
        "usr/share/info/*",
        "usr/share/groff/*",
        "usr/share/locale/*",
    ):
        for path in rootfs.glob(pattern):
            _remove(path)
    for doc in (rootfs / "usr/share/doc").glob("*"):
        if doc.is_dir() and not doc.is_symlink():
            for item in doc.iterdir():
                if item.name != "copyright":
                    shutil.rmtree(
                        item
                    ) if item.is_dir() and not item.is_symlink() else item.unlink()
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
