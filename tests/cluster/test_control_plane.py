"""The cluster itself: idempotent start, client-certificate authentication, loopback only,
zone-labelled nodes that the scheduler spreads pods over."""

from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.cluster.kube import Kube
from tools.cluster import control_plane

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_up_is_idempotent(cluster: control_plane.Cluster) -> None:
    again = control_plane.up(cluster.state_dir)
    assert again.pids == cluster.pids
    assert again.ports == cluster.ports


def test_requests_without_a_client_certificate_are_refused(cluster: control_plane.Cluster) -> None:
    ctx = ssl.create_default_context(cafile=str(cluster.pki / "ca.crt"))
    request = urllib.request.Request(f"{cluster.server}/api/v1/namespaces/kube-system/secrets")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, context=ctx, timeout=5)
    assert refused.value.code in (401, 403)


def _listening(pid: int) -> set[str]:
    """host:port of every TCP socket in LISTEN state the process owns (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = str(fd.readlink()) if fd.is_symlink() else ""
        match = re.fullmatch(r"socket:\[(\d+)\]", target)
        if match:
            inodes.add(match.group(1))
    found = set()
    for table, size in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A = LISTEN
                continue
            address, port = fields[1].split(":")
            host = (
                "127.0.0.1"
                if address == "0100007F"
                else ("any" if set(address) == {"0"} else address)
            )
            assert len(address) == size
            found.add(f"{host}:{int(port, 16)}")
    return found


def test_every_component_listens_on_loopback_only(cluster: control_plane.Cluster) -> None:
    for name, pid in cluster.pids.items():
        sockets = _listening(pid)
        if name == "flagger":
            # Flagger binds its metrics/health port on every address (":" + -port, no flag to
            # choose the address); that one socket is the documented exception.
            sockets.discard(f"any:{cluster.ports['flagger']}")
        assert all(s.startswith("127.0.0.1:") for s in sockets), (name, sockets)


def test_nodes_span_three_zones_and_are_ready(kube: Kube) -> None:
    nodes = json.loads(kube.kubectl("get", "nodes", "-o", "json"))["items"]
    zones = {n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes}
    assert len(zones) == 3
    for node in nodes:
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready[0]["status"] == "True", node["metadata"]["name"]
