"""Start and stop a loopback Kubernetes control plane: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kwok (simulated nodes) and Flagger.

Every process listens on 127.0.0.1 only and runs detached (its own session), so `make cluster`
returns while the cluster keeps running; the state directory records ports and pids, which is
what makes `up` idempotent and `down` precise (it signals exactly the pids it started).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.cluster import build, pki
from tools.kit.ports import free_port
from tools.kit.programs import require_program

# Components in start order; `down` stops them in reverse.
COMPONENTS = ("etcd", "apiserver", "controller-manager", "scheduler", "kwok", "flagger")
PORT_NAMES = (
    "etcd",
    "etcd-peer",
    "apiserver",
    "controller-manager",
    "scheduler",
    "kwok",
    "flagger",
)
SERVICE_CIDR = "10.96.0.0/16"
# Fake nodes, one per zone, so that the chart's zone topology spread has something to spread
# over. The zone names follow AWS' (the platform runs on EKS).
ZONES = ("eu-west-1a", "eu-west-1b", "eu-west-1c")
KWOK_ANNOTATION = "kwok.x-k8s.io/node"


class ClusterError(RuntimeError):
    """A component did not come up; the message names it and the tail of its log."""


@dataclass
class Cluster:
    """One cluster's state directory and what it recorded."""

    state_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    # Seconds from the start of `up` until each step was done (not saved).
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def save(self) -> None:
        state = {"ports": self.ports, "pids": self.pids}
        (self.state_dir / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))

    @classmethod
    def load(cls, state_dir: Path) -> Cluster:
        cluster = cls(state_dir=state_dir)
        path = state_dir / "state.json"
        if path.is_file():
            state = json.loads(path.read_text())
            cluster.ports = {str(k): int(v) for k, v in state.get("ports", {}).items()}
            cluster.pids = {str(k): int(v) for k, v in state.get("pids", {}).items()}
        return cluster

    def kubectl_env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def rss_mib(self) -> dict[str, float]:
        """Resident memory of each running component (from /proc), in MiB."""
        out: dict[str, float] = {}
        for name, pid in self.pids.items():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    out[name] = int(line.split()[1]) / 1024
        return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of this process still answers kill(0); it is not running.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _tls(cluster: Cluster, client: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cluster.pki / "ca.crt"))
    ctx.load_cert_chain(str(cluster.pki / f"{client}.crt"), str(cluster.pki / f"{client}.key"))
    return ctx


def _get(url: str, ctx: ssl.SSLContext | None, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:  # noqa: S310 - loopback https/http only
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (OSError, ssl.SSLError) as error:
        return 0, str(error)


def _log_tail(cluster: Cluster, name: str, lines: int = 30) -> str:
    path = cluster.logs / f"{name}.log"
    if not path.is_file():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait(cluster: Cluster, name: str, check: Any, timeout: float) -> None:
    try:
        _wait_until(cluster, name, check, timeout)
    finally:
        cluster.timings[name] = time.monotonic() - cluster.timings.get("_t0", time.monotonic())


def _wait_until(cluster: Cluster, name: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        pid = cluster.pids.get(name)
        if pid is not None and not _alive(pid):
            raise ClusterError(f"{name} exited while starting:\n{_log_tail(cluster, name)}")
        ok, last = check()
        if ok:
            return
        time.sleep(0.2)
    raise ClusterError(
        f"{name} not ready after {timeout:.0f}s ({last}):\n{_log_tail(cluster, name)}"
    )


# Flagger calls the URLs in a Canary (webhooks such as the chart's load tester, in-cluster DNS
# names) from this host: every HTTP(S) request not to loopback goes to a proxy address on the
# loopback discard port and fails there, so no DNS lookup or connection ever leaves 127.0.0.1.
LOOPBACK_ONLY = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "no_proxy": "127.0.0.1,localhost",
    # client-go >= 0.34 opens its informers with a streaming list (WatchListClient), which
    # needs etcd's RequestWatchProgress (etcd >= 3.4.31/3.5.8); Debian's etcd 3.4.23 lacks it,
    # the apiserver refuses the stream and kwok's informers kept restarting (pods deleted long
    # after their deadline). The classic list-then-watch works with any etcd.
    "KUBE_FEATURE_WatchListClient": "false",
}


def _start(cluster: Cluster, name: str, argv: list[str], *, detach: bool) -> None:
    cluster.logs.mkdir(parents=True, exist_ok=True)
    with (cluster.logs / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own binaries, fixed arguments
            argv,
            env={**os.environ, **LOOPBACK_ONLY},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cluster.state_dir,
            # `make cluster` outlives its command; a test session's cluster stays in the
            # session's process group, so killing the test run kills the cluster with it.
            start_new_session=detach,
        )
    cluster.pids[name] = proc.pid
    cluster.save()


def _write_kubeconfig(cluster: Cluster, client: str, path: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "agent-platform-test",
                "cluster": {
                    "server": cluster.server,
                    "certificate-authority": str(cluster.pki / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": client,
                "user": {
                    "client-certificate": str(cluster.pki / f"{client}.crt"),
                    "client-key": str(cluster.pki / f"{client}.key"),
                },
            }
        ],
        "contexts": [
            {
                "name": "agent-platform-test",
                "context": {"cluster": "agent-platform-test", "user": client},
            }
        ],
        "current-context": "agent-platform-test",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


def _kubectl(cluster: Cluster, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
    kubectl = require_program("kubectl")
    proc = subprocess.run(  # noqa: S603 - the pinned kubectl
        [kubectl, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=cluster.kubectl_env(),
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def fake_nodes() -> list[dict[str, Any]]:
    nodes = []
    for index, zone in enumerate(ZONES):
        name = f"kwok-node-{index}"
        nodes.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {
                        "kubernetes.io/arch": "amd64",
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/hostname": name,
                        "topology.kubernetes.io/zone": zone,
                        "topology.kubernetes.io/region": zone[:-1],
                        "type": "kwok",
                    },
                },
                "status": {
                    "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
                    "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"},
                    "nodeInfo": {
                        "architecture": "amd64",
                        "operatingSystem": "linux",
                        "kubeletVersion": "fake",
                        "kubeProxyVersion": "fake",
                    },
                },
            }
        )
    return nodes


def _apiserver_argv(cluster: Cluster, binaries: Path) -> list[str]:
    p, ports = cluster.pki, cluster.ports
    return [
        str(binaries / "kube-apiserver"),
        f"--etcd-servers=https://127.0.0.1:{ports['etcd']}",
        f"--etcd-cafile={p / 'ca.crt'}",
        f"--etcd-certfile={p / 'apiserver-etcd-client.crt'}",
        f"--etcd-keyfile={p / 'apiserver-etcd-client.key'}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports['apiserver']}",
        f"--tls-cert-file={p / 'apiserver.crt'}",
        f"--tls-private-key-file={p / 'apiserver.key'}",
        f"--client-ca-file={p / 'ca.crt'}",
        f"--service-account-key-file={p / 'sa.pub'}",
        f"--service-account-signing-key-file={p / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        # PodSecurity is on by default; listed so that a future default change cannot drop it.
        "--enable-admission-plugins=NodeRestriction,PodSecurity",
        "--profiling=false",
        "--feature-gates=WatchList=false",
        "--v=1",
    ]


def _component_argv(cluster: Cluster, binaries: Path, name: str) -> list[str]:
    kubeconfig = str(cluster.state_dir / f"{name}.kubeconfig")
    common = [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={cluster.ports[name]}",
        f"--cert-dir={cluster.state_dir / 'serving' / name}",
        "--leader-elect=false",
        "--profiling=false",
    ]
    if name == "scheduler":
        return [str(binaries / "kube-scheduler"), *common]
    return [
        str(binaries / "kube-controller-manager"),
        *common,
        f"--service-account-private-key-file={cluster.pki / 'sa.key'}",
        f"--root-ca-file={cluster.pki / 'ca.crt'}",
        "--use-service-account-credentials=true",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # Garbage-collect the replica sets and pods of deleted releases quickly.
        "--concurrent-gc-syncs=5",
    ]


def _etcd_argv(cluster: Cluster) -> list[str]:
    p, ports = cluster.pki, cluster.ports
    return [
        require_program("etcd"),
        "--name=agent-platform-test",
        f"--data-dir={cluster.state_dir / 'etcd'}",
        f"--listen-client-urls=https://127.0.0.1:{ports['etcd']}",
        f"--advertise-client-urls=https://127.0.0.1:{ports['etcd']}",
        # One member, no peers: the peer URL is only bound on loopback.
        f"--listen-peer-urls=http://127.0.0.1:{ports['etcd-peer']}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{ports['etcd-peer']}",
        f"--initial-cluster=agent-platform-test=http://127.0.0.1:{ports['etcd-peer']}",
        f"--cert-file={p / 'etcd.crt'}",
        f"--key-file={p / 'etcd.key'}",
        f"--trusted-ca-file={p / 'ca.crt'}",
        "--client-cert-auth=true",
        "--listen-metrics-urls=",
        "--log-level=warn",
    ]


def _flagger_argv(cluster: Cluster, binaries: Path, metrics_server: str) -> list[str]:
    return [
        str(binaries / "flagger"),
        f"-kubeconfig={cluster.state_dir / 'flagger.kubeconfig'}",
        # The Canary's spec.provider overrides this per canary; "kubernetes" needs no mesh.
        "-mesh-provider=kubernetes",
        f"-metrics-server={metrics_server}",
        f"-port={cluster.ports['flagger']}",
        "-log-level=info",
        "-enable-leader-election=false",
        "-control-loop-interval=2s",
    ]


def _kwok_argv(cluster: Cluster, binaries: Path, crds: Path) -> list[str]:
    return [
        str(binaries / "kwok"),
        f"--kubeconfig={cluster.state_dir / 'kwok.kubeconfig'}",
        f"--config={crds / 'kwok-stages.yaml'}",
        f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
        f"--server-address=127.0.0.1:{cluster.ports['kwok']}",
        "--node-ip=127.0.0.1",
        "--cidr=10.244.0.0/16",
        "--node-lease-duration-seconds=40",
    ]


def running(cluster: Cluster) -> bool:
    if not cluster.pids or not all(_alive(cluster.pids.get(c, -1)) for c in COMPONENTS):
        return False
    status, _ = _get(f"{cluster.server}/readyz", _tls(cluster, "admin"))
    return status == 200


def _choose_ports(cluster: Cluster) -> None:
    for name in PORT_NAMES:
        port = cluster.ports.get(name)
        if port is None or not _port_free(port):
            cluster.ports[name] = free_port()


def up(
    state_dir: Path, *, metrics_server: str = "http://127.0.0.1:9", detach: bool = True
) -> Cluster:
    """Start the cluster recorded in `state_dir` unless it is running (idempotent).

    `metrics_server` is the Prometheus Flagger asks during an analysis; the default is the
    loopback discard port, so an analysis fails its metric checks rather than reaching out.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster.load(state_dir)
    if running(cluster):
        return cluster
    stop(cluster)
    cache = build.ensure_built(build_missing=False)
    binaries, crds = cache / "bin", cache / "crds"
    cluster.timings["_t0"] = time.monotonic()
    pki.ensure_pki(cluster.pki)
    cluster.timings["pki"] = time.monotonic() - cluster.timings["_t0"]
    _choose_ports(cluster)
    cluster.save()
    for name in ("admin", "controller-manager", "scheduler", "kwok", "flagger"):
        path = cluster.kubeconfig if name == "admin" else state_dir / f"{name}.kubeconfig"
        _write_kubeconfig(cluster, name, path)

    etcd_tls = _tls(cluster, "apiserver-etcd-client")
    _start(cluster, "etcd", _etcd_argv(cluster), detach=detach)
    _wait(
        cluster,
        "etcd",
        lambda: _ok(_get(f"https://127.0.0.1:{cluster.ports['etcd']}/health", etcd_tls)),
        30,
    )
    admin_tls = _tls(cluster, "admin")
    _start(cluster, "apiserver", _apiserver_argv(cluster, binaries), detach=detach)
    _wait(cluster, "apiserver", lambda: _ok(_get(f"{cluster.server}/readyz", admin_tls)), 90)
    for name in ("controller-manager", "scheduler"):
        _start(cluster, name, _component_argv(cluster, binaries, name), detach=detach)
    apply_crds(cluster, sorted(crds.glob("*.crd.yaml")))
    cluster.timings["crds"] = time.monotonic() - cluster.timings["_t0"]
    _kubectl(cluster, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(fake_nodes()))
    _start(cluster, "kwok", _kwok_argv(cluster, binaries, crds), detach=detach)
    _start(cluster, "flagger", _flagger_argv(cluster, binaries, metrics_server), detach=detach)
    for name in ("controller-manager", "scheduler"):
        _wait(
            cluster,
            name,
            lambda name=name: _ok(
                _get(f"https://127.0.0.1:{cluster.ports[name]}/healthz", _probe_tls())
            ),
            60,
        )
    _wait(cluster, "kwok", lambda: _nodes_ready(cluster), 60)
    _wait(
        cluster,
        "flagger",
        lambda: _ok(_get(f"http://127.0.0.1:{cluster.ports['flagger']}/healthz", None)),
        60,
    )
    cluster.timings.pop("_t0")
    return cluster


def _probe_tls() -> ssl.SSLContext:
    """The components serve /healthz with a self-signed certificate of their own; the probe
    only asks whether they answer."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _ok(result: tuple[int, str]) -> tuple[bool, str]:
    status, body = result
    return status == 200, f"HTTP {status}: {body[:200]}"


def _nodes_ready(cluster: Cluster) -> tuple[bool, str]:
    out = _kubectl(
        cluster,
        "get",
        "nodes",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}="
        '{.status.conditions[?(@.type=="Ready")].status} {end}',
    )
    states = dict(item.split("=", 1) for item in out.split())
    return len(states) == len(ZONES) and all(v == "True" for v in states.values()), out


def apply_crds(cluster: Cluster, files: Iterable[Path]) -> None:
    paths = list(files)
    if not paths:
        raise ClusterError("no CRD manifests found in the build cache")
    args = ["apply", "--server-side", "--force-conflicts"]
    for path in paths:
        args += ["-f", str(path)]
    _kubectl(cluster, *args, timeout=120)
    names = []
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                names.append(f"crd/{doc['metadata']['name']}")
    _kubectl(cluster, "wait", "--for=condition=Established", "--timeout=60s", *names, timeout=90)


def stop(cluster: Cluster, timeout: float = 15) -> list[str]:
    """Stop the recorded processes (reverse start order), SIGTERM then SIGKILL."""
    stopped = []
    for name in reversed(COMPONENTS):
        pid = cluster.pids.get(name)
        if pid is None or not _alive(pid):
            continue
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
        _reap(pid)
        stopped.append(name)
    cluster.pids = {}
    if cluster.state_dir.is_dir():
        cluster.save()
    return stopped


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    """Collect a child started by this process (tests) so it does not stay a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
