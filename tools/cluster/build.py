"""Build the cluster's binaries from their Go modules and gather the CRD manifests.

Everything is built once per pinned version into a machine-level cache
(~/.cache/agent-platform/cluster/<key>/, or $AGENT_PLATFORM_CLUSTER_CACHE) and linked into
.tools/cluster/, so a fresh clone on a machine that built it before starts warm. Go keeps its
own module and build caches (GOMODCACHE, GOCACHE) where `go env` says, also machine-level.

No third-party source is written into the repository: each binary is built from a small
wrapper module generated under .tools/cluster/src/ that requires the upstream module and
copies its `replace` lines (Kubernetes' staging modules become their published v0.X.Y).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tools.cluster import versions
from tools.kit.programs import REPO_ROOT

TOOLS_DIR = REPO_ROOT / ".tools" / "cluster"
BIN_DIR = TOOLS_DIR / "bin"
CRD_DIR = TOOLS_DIR / "crds"

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


@dataclass(frozen=True)
class GoBuild:
    """One upstream module and the main packages built from it."""

    name: str
    module: str
    version: str
    packages: tuple[str, ...]
    ldflags: str = ""


def machine_cache() -> Path:
    override = os.environ.get("AGENT_PLATFORM_CLUSTER_CACHE")
    return Path(override) if override else Path.home() / ".cache" / "agent-platform" / "cluster"


def build_dir(build: GoBuild) -> Path:
    """One directory per module and version, so that changing one pin rebuilds only it."""
    return machine_cache() / f"{build.name}-{build.version}-{versions.GOEXPERIMENT}"


def manifests_dir() -> Path:
    # The file lists are part of the key: taking one more CRD gathers the manifests again.
    files = hashlib.sha256(repr((CRD_SOURCES, KWOK_STAGES)).encode()).hexdigest()[:10]
    return machine_cache() / f"manifests-{versions.manifests_key()}-{files}"


def _exe(package: str) -> str:
    return package.rsplit("/", 1)[1]


def _kube_ldflags() -> str:
    # helm compares the chart's kubeVersion with the server's; an unstamped build reports
    # v0.0.0-master and every install would fail the constraint.
    major, minor = versions.KUBERNETES.removeprefix("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return (
        f"-s -w -X {pkg}.gitVersion={versions.KUBERNETES} -X {pkg}.gitMajor={major}"
        f" -X {pkg}.gitMinor={minor} -X {pkg}.gitTreeState=clean"
    )


BUILDS = (
    GoBuild(
        name="kubernetes",
        module="k8s.io/kubernetes",
        version=versions.KUBERNETES,
        packages=tuple(f"k8s.io/kubernetes/cmd/{b}" for b in KUBE_BINARIES),
        ldflags=_kube_ldflags(),
    ),
    GoBuild(
        name="kwok",
        module="sigs.k8s.io/kwok",
        version=versions.KWOK,
        packages=("sigs.k8s.io/kwok/cmd/kwok",),
        ldflags="-s -w",
    ),
    GoBuild(
        name="flagger",
        module="github.com/fluxcd/flagger",
        version=versions.FLAGGER,
        packages=("github.com/fluxcd/flagger/cmd/flagger",),
        ldflags="-s -w",
    ),
)

# (module, version, files inside the module zip) for the CRDs the chart's objects need.
CRD_SOURCES = (
    ("github.com/fluxcd/flagger", versions.FLAGGER, ("artifacts/flagger/crd.yaml",)),
    (
        "github.com/prometheus-operator/prometheus-operator",
        versions.PROMETHEUS_OPERATOR,
        (
            "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
            "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
        ),
    ),
    (
        "github.com/external-secrets/external-secrets",
        versions.EXTERNAL_SECRETS,
        (
            # The chart only names its (Cluster)SecretStore; those CRDs (600 kB each) would
            # double the cluster's start time for nothing the tests create.
            "config/crds/bases/external-secrets.io_externalsecrets.yaml",
        ),
    ),
    (
        "sigs.k8s.io/gateway-api",
        versions.GATEWAY_API,
        (
            "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
            "config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
        ),
    ),
)


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GOEXPERIMENT"] = versions.GOEXPERIMENT
    # Never let go.mod's `toolchain` line download another Go: the pinned behaviour is 1.26's.
    env["GOTOOLCHAIN"] = "local"
    env["GOFLAGS"] = "-mod=mod -buildvcs=false"
    env["CGO_ENABLED"] = "0"
    return env


def _go(args: list[str], cwd: Path) -> str:
    go = shutil.which("go")
    if go is None:
        raise SystemExit("make cluster: the Go toolchain (go 1.26) is not on PATH")
    proc = subprocess.run(  # noqa: S603 - the go toolchain, our own arguments
        [go, *args], cwd=cwd, env=go_env(), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"make cluster: go {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


def module_dir(module: str, version: str) -> Path:
    """Download one module (into Go's own module cache) and return its directory."""
    out = _go(["mod", "download", "-json", f"{module}@{version}"], cwd=TOOLS_DIR)
    info = json.loads(out)
    return Path(info["Dir"])


_REPLACE = re.compile(r"^\s*(?:replace\s+)?([^\s()]+)(?:\s+(v\S+))?\s+=>\s+(\S+)(?:\s+(v\S+))?\s*$")


def wrapper_gomod(build: GoBuild) -> str:
    upstream = (module_dir(build.module, build.version) / "go.mod").read_text()
    return wrapper_gomod_text(build, upstream)


def wrapper_gomod_text(build: GoBuild, upstream: str) -> str:
    """go.mod of a module that only requires `build.module`, with its replace lines.

    `replace` only applies in the main module, so upstream's own lines are copied; relative
    ones (Kubernetes' ./staging/src/k8s.io/<name>) point at the published staging modules.
    """
    replaces: list[str] = []
    in_block = False
    for raw in upstream.splitlines():
        line = raw.split("//", 1)[0].rstrip()
        if line.strip().startswith("replace ("):
            in_block = True
            continue
        if in_block and line.strip() == ")":
            in_block = False
            continue
        if not (in_block or line.strip().startswith("replace ")):
            continue
        match = _REPLACE.match(line)
        if match is None:
            continue
        old, old_version, new, new_version = match.groups()
        if new.startswith("./") or new.startswith("../"):
            if build.module != "k8s.io/kubernetes":
                raise SystemExit(f"cluster: {build.module} replaces {old} with a local path")
            new, new_version = old, versions.staging_version(build.version)
        left = f"{old} {old_version}" if old_version else old
        right = f"{new} {new_version}" if new_version else new
        replaces.append(f"\t{left} => {right}")
    go_line = re.search(r"^go (\S+)", upstream, re.MULTILINE)
    body = [
        f"module agentplatform.local/clusterbuild/{build.name}",
        "",
        f"go {go_line.group(1) if go_line else '1.26'}",
        "",
        f"require {build.module} {build.version}",
    ]
    if replaces:
        body += ["", "replace (", *replaces, ")"]
    return "\n".join(body) + "\n"


def _log(msg: str) -> None:
    print(f"cluster: {msg}", file=sys.stderr, flush=True)


def build_one(build: GoBuild, out_dir: Path) -> None:
    src = TOOLS_DIR / "src" / build.name
    src.mkdir(parents=True, exist_ok=True)
    (src / "go.mod").write_text(wrapper_gomod(build))
    # A stub main package keeps `go build` happy in an otherwise empty module.
    (src / "doc.go").write_text(
        f"// Package {build.name} only pins {build.module}.\npackage clusterbuild\n"
    )
    started = time.monotonic()
    _log(
        f"building {build.module}@{build.version} "
        f"({', '.join(p.rsplit('/', 1)[1] for p in build.packages)})"
    )
    tmp = out_dir.with_name(out_dir.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    _go(
        [
            "build",
            "-p",
            "2",
            "-trimpath",
            "-ldflags",
            build.ldflags,
            "-o",
            str(tmp) + "/",
            *build.packages,
        ],
        cwd=src,
    )
    for exe in tmp.iterdir():
        os.replace(exe, out_dir / exe.name)
    tmp.rmdir()
    _log(f"built {build.name} in {time.monotonic() - started:.0f}s")


# kwok's own Stage manifests: nodes become Ready and keep a lease; pods become Ready, pods of
# Jobs complete (so Helm hooks finish), and deleted pods go away.
KWOK_STAGES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)


def gather_manifests(out_dir: Path) -> None:
    """CRDs as <project>_<file>.crd.yaml, and kwok's stages as one kwok-stages.yaml."""
    for module, version, files in CRD_SOURCES:
        root = module_dir(module, version)
        for rel in files:
            target = out_dir / f"{module.rsplit('/', 1)[1]}_{Path(rel).stem}.crd.yaml"
            shutil.copyfile(root / rel, target)
    kwok = module_dir("sigs.k8s.io/kwok", versions.KWOK)
    stages = [(kwok / rel).read_text().strip() for rel in KWOK_STAGES]
    (out_dir / "kwok-stages.yaml").write_text("\n---\n".join(stages) + "\n")


class NotBuilt(RuntimeError):
    """The binaries for the pinned versions are not in the machine cache."""


def missing() -> list[str]:
    out = [
        _exe(p)
        for build in BUILDS
        for p in build.packages
        if not (build_dir(build) / _exe(p)).is_file()
    ]
    if not (manifests_dir() / ".complete").is_file():
        out.append("CRD manifests")
    return out


def ensure_built(*, build_missing: bool = True) -> Path:
    """Build what is missing in the machine cache and link it into .tools/cluster/{bin,crds};
    returns .tools/cluster."""
    absent = missing()
    if absent and not build_missing:
        raise NotBuilt(f"not built yet: {', '.join(absent)}; run: make cluster-build")
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    for build in BUILDS:
        out = build_dir(build)
        if not all((out / _exe(p)).is_file() for p in build.packages):
            out.mkdir(parents=True, exist_ok=True)
            build_one(build, out)
    crds = manifests_dir()
    if not (crds / ".complete").is_file():
        crds.mkdir(parents=True, exist_ok=True)
        gather_manifests(crds)
        (crds / ".complete").touch()
    if BIN_DIR.is_symlink() or BIN_DIR.is_file():
        BIN_DIR.unlink()
    BIN_DIR.mkdir(exist_ok=True)
    links = {_exe(p): build_dir(b) / _exe(p) for b in BUILDS for p in b.packages}
    links[CRD_DIR.name] = crds
    for name, target in links.items():
        link = TOOLS_DIR / name if name == CRD_DIR.name else BIN_DIR / name
        if link.is_symlink() and link.resolve() == target.resolve():
            continue
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.is_dir():
            shutil.rmtree(link)
        link.symlink_to(target)
    return TOOLS_DIR


if __name__ == "__main__":
    t0 = time.monotonic()
    ensure_built()
    _log(f"binaries ready in {time.monotonic() - t0:.0f}s")
