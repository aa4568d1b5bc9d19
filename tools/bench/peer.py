"""The peer: LangGraph's own server as `langgraph dev` runs it (langgraph-cli[inmem]), in an
environment of its own (its API server pins grpcio/protobuf/structlog versions that would
clash with the Pulumi packages in the project's lock), serving the same graph modules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tools.kit.programs import REPO_ROOT

PEER_ENV = REPO_ROOT / ".tools" / "bench-peer"
# Pinned: a benchmark against a moving peer is not reproducible.
PEER_REQUIREMENTS = (
    "langgraph-cli[inmem]==0.4.40",
    "langgraph-api==0.16.7",
    "langgraph-runtime-inmem==0.36.7",
    # What the graph modules import besides langgraph.
    "langchain>=1.0,<2",
    "prometheus-client>=0.20",
    "pydantic-settings>=2.3",
)


def ensure_peer_env() -> Path:
    stamp = PEER_ENV / ".requirements"
    wanted = "\n".join(PEER_REQUIREMENTS)
    if stamp.exists() and stamp.read_text() == wanted:
        return PEER_ENV / "bin" / "langgraph"
    python = REPO_ROOT / ".venv" / "bin" / "python"
    uv = shutil.which("uv") or "uv"
    venv = [uv, "venv", "-q", "--allow-existing", "--python", str(python), str(PEER_ENV)]
    subprocess.run(venv, check=True)  # noqa: S603 - uv, fixed arguments
    install = [uv, "pip", "install", "-q", "--python", str(PEER_ENV / "bin" / "python")]
    subprocess.run([*install, *PEER_REQUIREMENTS], check=True)  # noqa: S603
    stamp.write_text(wanted)
    return PEER_ENV / "bin" / "langgraph"


def write_config(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "dependencies": [str(REPO_ROOT / "app"), str(REPO_ROOT)],
        "graphs": {
            "main_agent": f"{REPO_ROOT}/app/agent_service/graphs/served.py:main_agent",
            "one_node": f"{REPO_ROOT}/tools/bench/one_node.py:graph",
        },
    }
    path = directory / "langgraph.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def peer_command(langgraph: Path, config: Path, port: int) -> list[str]:
    return [
        str(langgraph),
        "dev",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-reload",
        "--no-browser",
    ]


def peer_env(graph_env: dict[str, str]) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108
        "PYTHONPATH": f"{REPO_ROOT / 'app'}:{REPO_ROOT}",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
        **graph_env,
    }
