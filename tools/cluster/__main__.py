"""`python -m tools.cluster build|up|down|status` (what `make cluster*` runs)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tools.cluster import build, control_plane
from tools.kit.programs import REPO_ROOT

DEFAULT_STATE = REPO_ROOT / ".local" / "cluster"


def _usage(cluster: control_plane.Cluster, seconds: float) -> str:
    rss = cluster.rss_mib()
    memory = ", ".join(f"{k} {v:.0f}" for k, v in rss.items())
    steps = ", ".join(f"{k} {v:.1f}" for k, v in cluster.timings.items())
    return (
        f"cluster: up in {seconds:.1f}s at {cluster.server} "
        f"(RSS MiB: {memory}; total {sum(rss.values()):.0f})\n"
        + (f"  ready after (s): {steps}\n" if steps else "")
        + f"  export KUBECONFIG={cluster.kubeconfig}\n"
        "  kubectl get nodes -L topology.kubernetes.io/zone\n"
        "  helm install agent charts/langgraph-agent \\\n"
        "    -f charts/langgraph-agent/ci/minimal-values.yaml\n"
        f"  logs: {cluster.logs}/   stop: make cluster-down"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cluster")
    parser.add_argument("command", choices=("build", "up", "down", "status"))
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.command == "build":
        cache = build.ensure_built()
        print(f"cluster: binaries and CRDs in {cache} ({time.monotonic() - started:.0f}s)")
        return 0
    if args.command == "down":
        cluster = control_plane.Cluster.load(args.state_dir)
        stopped = control_plane.stop(cluster)
        print(
            f"cluster: stopped {', '.join(stopped) or 'nothing (not running)'}; "
            f"data kept in {args.state_dir}"
        )
        return 0
    if args.command == "status":
        cluster = control_plane.Cluster.load(args.state_dir)
        if not control_plane.running(cluster):
            print("cluster: not running (make cluster)")
            return 1
        print(_usage(cluster, 0.0))
        return 0
    build.ensure_built()
    was_running = control_plane.running(control_plane.Cluster.load(args.state_dir))
    try:
        cluster = control_plane.up(args.state_dir)
    except control_plane.ClusterError as error:
        print(f"cluster: {error}", file=sys.stderr)
        return 1
    if was_running:
        print("cluster: already running")
    print(_usage(cluster, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
