"""results.json, docs/benchmarks.md (every row with its ratio to the peer) and the plot."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from tools.bench import background

PEER = "langgraph dev (inmem)"
DURABLE = "this service, PostgreSQL"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    versions = {}
    for package in ("langgraph", "langgraph-checkpoint-postgres", "fastapi", "uvicorn", "psycopg"):
        versions[package] = metadata.version(package)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "packages": versions,
        "peer": "langgraph-cli[inmem] 0.4.40, langgraph-api 0.16.7, langgraph-runtime-inmem 0.36.7",
    }


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["graph"], row["mode"], row["concurrency"], row.get("durability"))


def with_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    peers = {_key(r): r for r in rows if r["target"] == PEER}
    out = []
    for row in rows:
        peer = peers.get(_key(row))
        ratio = row["rps"] / peer["rps"] if peer and peer["rps"] else None
        p99 = row["p99_ms"] / peer["p99_ms"] if peer and peer["p99_ms"] else None
        out.append({**row, "rps_vs_peer": ratio, "p99_vs_peer": p99})
    return out


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = results["throughput"]
    durable = [r for r in rows if r["target"] == DURABLE and r["mode"] == "threaded"]
    ratios = [r["rps_vs_peer"] for r in durable if r.get("rps_vs_peer")]
    ours = [r for r in rows if r["target"] != PEER and r.get("p99_vs_peer") is not None]
    write_p95 = results["checkpoints"]["concurrency_1"]["service_saver"]["write"]["p95_ms"]
    by_target = {p["target"]: p for p in results["processes"]}
    ours_process = by_target.get(DURABLE, {})
    return [
        {
            "target": "threaded runs, durable PostgreSQL: >= 3x the peer's req/s",
            "measured": f"{min(ratios):.2f}x to {max(ratios):.2f}x" if ratios else "n/a",
            "met": bool(ratios) and min(ratios) >= 3,
        },
        {
            "target": "p99 below the peer's at every concurrency",
            "measured": f"{sum(r['p99_vs_peer'] < 1 for r in ours)} of {len(ours)} rows",
            "met": bool(ours) and all(r["p99_vs_peer"] < 1 for r in ours),
        },
        {
            "target": "checkpoint write p95 < 5 ms",
            "measured": f"{write_p95:.2f} ms",
            "met": write_p95 < 5,
        },
        {
            "target": "idle RSS < 150 MB",
            "measured": f"{ours_process.get('idle_rss_mb', float('nan')):.0f} MB",
            "met": ours_process.get("idle_rss_mb", 1e9) < 150,
        },
        {
            "target": "ready in < 2 s",
            "measured": f"{ours_process.get('ready_seconds', float('nan')):.2f} s",
            "met": ours_process.get("ready_seconds", 1e9) < 2,
        },
    ]


def reading(results: dict[str, Any]) -> list[str]:
    """What the numbers say, computed from them, so the page never contradicts its tables."""
    rows = results["throughput"]

    index: dict[tuple[Any, ...], dict[str, Any]] = {
        (r["target"], r["graph"], r["mode"], r["concurrency"]): r for r in rows
    }

    def row(target: str, graph: str, mode: str, clients: int) -> dict[str, Any] | None:
        return index.get((target, graph, mode, clients))

    top = max(results["plan"]["concurrencies"])
    peer_1 = row(PEER, "main_agent", "threaded", 1)
    ours_1 = row(DURABLE, "main_agent", "threaded", 1)
    peer_top = row(PEER, "main_agent", "threaded", top)
    ours_top = row(DURABLE, "main_agent", "threaded", top)
    client = max(r["client_cpu_share"] for r in rows)
    savers = (
        results["checkpoints"][f"concurrency_{32}"]
        if "concurrency_32" in results["checkpoints"]
        else None
    )
    lines = []
    if peer_1 and ours_1 and peer_top and ours_top:
        lines += [
            f"- One client: the peer answers a threaded `main_agent` run in "
            f"{peer_1['p50_ms']:.0f} ms (p50) where this service takes {ours_1['p50_ms']:.0f} ms: "
            "the peer queues each run for a background worker and the waiting request learns of "
            "its end by polling, so its latency has a floor near one second whatever the graph.",
            f"- {top} clients: both are bound by the machine's {results['machine']['cores']} cores "
            f"running the graph ({peer_top['rps']:.0f} against {ours_top['rps']:.0f} req/s, "
            f"{ours_top['rps'] / peer_top['rps']:.2f}x); the 3x target is missed there. What "
            "would move it: fewer graph steps per turn (each middleware step is a superstep and "
            "a checkpoint; `durability=exit` shows the ceiling), more worker processes on more "
            "cores (`WORKERS`), and a model that is not on the same CPU.",
        ]
    lines.append(
        f"- The load generator used at most {client:.0%} of one core's time per wall second: it "
        "was not the bottleneck."
    )
    if savers:
        ours, upstream = savers["service_saver"], savers["upstream_saver"]
        lines.append(
            f"- 32 concurrent checkpoint writers: the service's lock-free saver does "
            f"{ours['operations_per_s']:.0f} ops/s against {upstream['operations_per_s']:.0f} for "
            "the upstream AsyncPostgresSaver on the same pool, whose per-instance asyncio lock "
            "serialises every call."
        )
    return lines


def _fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def markdown(results: dict[str, Any], command: str) -> str:
    m = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        "This service against LangGraph's own server as `langgraph dev` runs it, serving the same",
        "graphs (`main_agent` on the offline model, and a one-node graph), on the same machine, in",
        f"one run. Generated by `{command}`; the numbers below are from that run.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']},",
        f"kernel {m['kernel']}. Peer: {m['peer']}. Packages: "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items())
        + ".",
        "",
        f"Method: closed-loop asyncio clients, {results['plan']['warmup']} s warm-up not counted,",
        f"{results['plan']['duration']} s measured, {results['plan']['repetitions']} repetitions,",
        "medians reported. Each server runs one process (one uvicorn worker). The load generator",
        "shares the machine; its CPU share is in the last column. Ratios are against the peer's",
        "row with the same graph, mode and concurrency (req/s: higher is better; p99: lower).",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        *(
            f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'no'} |"
            for t in results["targets"]
        ),
        "",
        "## Reading the results",
        "",
        *reading(results),
        "",
        "## Throughput and latency",
        "",
        "| server | graph | mode | clients | req/s | x peer | p50 ms | p95 ms | p99 ms | p99 x peer"
        " | errors | client CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["throughput"]:
        lines.append(
            f"| {r['target']} | {r['graph']} | {r['mode']} | {r['concurrency']} | {r['rps']:.1f} "
            f"| {_fmt(r['rps_vs_peer'])} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {_fmt(r['p99_vs_peer'])} | {r['errors']} "
            f"| {r['client_cpu_share']:.0%} |"
        )
    lines += [
        "",
        "## Durability modes (main_agent, threaded)",
        "",
        "| server | durability | clients | req/s | x peer | p99 ms |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['target']} | {r['durability']} | {r['concurrency']} | {r['rps']:.1f} "
            f"| {_fmt(r['rps_vs_peer'])} | {r['p99_ms']:.1f} |"
            for r in results["durability"]
        ),
        "",
        "## Checkpoints through the saver (PostgreSQL)",
        "",
        "| concurrency | saver | write p50 ms | write p95 ms | read p50 ms | read p95 ms | ops/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for level, savers in results["checkpoints"].items():
        for saver, figures in savers.items():
            lines.append(
                f"| {level.removeprefix('concurrency_')} | {saver.replace('_', ' ')} "
                f"| {figures['write']['p50_ms']:.2f} | {figures['write']['p95_ms']:.2f} "
                f"| {figures['read']['p50_ms']:.2f} | {figures['read']['p95_ms']:.2f} "
                f"| {figures['operations_per_s']:.0f} |"
            )
    lines += background.markdown(results.get("background", []))
    lines += [
        "",
        "## Memory and start-up",
        "",
        "| server | start to ready s | idle RSS MB | RSS after load MB |",
        "|---|---|---|---|",
        *(
            f"| {p['target']} | {p['ready_seconds']:.2f} | {p['idle_rss_mb']:.0f} "
            f"| {p['rss_after_load_mb']:.0f} |"
            for p in results["processes"]
        ),
        "",
        "![throughput against concurrency](benchmarks-throughput.png)",
        "",
        "## Reproduce",
        "",
        "```bash",
        "make tools",
        "make bench            # writes build/bench/results.json, this page and the plot",
        "```",
        "",
    ]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
    for ax, graph in zip(axes, ("main_agent", "one_node"), strict=True):
        for target in dict.fromkeys(r["target"] for r in results["throughput"]):
            rows = [
                r
                for r in results["throughput"]
                if r["target"] == target and r["graph"] == graph and r["mode"] == "threaded"
            ]
            ax.plot(
                [r["concurrency"] for r in rows], [r["rps"] for r in rows], marker="o", label=target
            )
        ax.set_title(f"{graph}, threaded /runs/wait")
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel("requests/s")
        ax.set_xscale("log", base=2)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
