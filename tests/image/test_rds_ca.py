"""The RDS CA bundle as an input to `make image` (tools/image/rds_ca.py) and the release gate's
decision (tools/image/release.py), without podman: the download runs against a loopback server,
every refusal is one sentence naming the bundle and what to do."""

from __future__ import annotations

import hashlib
import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.image.conftest import throwaway_ca
from tools.image import rds_ca
from tools.image.rds_ca import LABEL, PINNED, UNPINNED, RdsCaError, stage
from tools.image.release import NotReleasable, require_releasable
from tools.kit.ports import free_port
from tools.kit.programs import REPO_ROOT


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    return throwaway_ca(tmp_path / "ca.pem")


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    return tmp_path / "context" / rds_ca.NAME


def _pin(tmp_path: Path, bundle: Path) -> Path:
    pin = tmp_path / "pin.sha256"
    pin.write_text(f"{hashlib.sha256(bundle.read_bytes()).hexdigest()}  {rds_ca.NAME}\n")
    return pin


@pytest.fixture
def served(ca: Path) -> Iterator[str]:
    """AWS's URL stood in for by a loopback server holding the throw-away CA."""
    body = ca.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/global/global-bundle.pem"
    finally:
        server.shutdown()


def test_the_pin_is_a_sha256() -> None:
    assert len(rds_ca.pinned_sha256()) == 64
    int(rds_ca.pinned_sha256(), 16)
    assert rds_ca.PIN.read_text().split()[1] == rds_ca.NAME


def test_a_downloaded_bundle_matching_the_pin_is_staged(
    tmp_path: Path, ca: Path, served: str, staged: Path
) -> None:
    bundle = stage(None, url=served, staged=staged, pin=_pin(tmp_path, ca))
    assert (bundle.kind, bundle.source, bundle.path) == (PINNED, served, staged)
    assert staged.read_bytes() == ca.read_bytes()
    assert bundle.sha256 == hashlib.sha256(ca.read_bytes()).hexdigest()


def test_a_downloaded_bundle_not_matching_the_pin_stops_the_build(
    served: str, staged: Path, ca: Path
) -> None:
    with pytest.raises(RdsCaError) as refused:
        stage(None, url=served, staged=staged)
    sentence = str(refused.value)
    assert served in sentence
    assert rds_ca.pinned_sha256() in sentence
    assert hashlib.sha256(ca.read_bytes()).hexdigest() in sentence
    assert "refresh the pin" in sentence
    assert "docs/image.md" in sentence
    assert not staged.exists()


def test_a_given_bundle_not_matching_the_pin_stops_the_build(ca: Path, staged: Path) -> None:
    with pytest.raises(RdsCaError, match=rf"{ca} has sha256 [0-9a-f]{{64}}, not the pinned"):
        stage(ca, staged=staged)
    assert not staged.exists()


def test_an_unreachable_url_fails_fast_naming_the_way_out(staged: Path) -> None:
    # A loopback port nobody listens on: refused at once.
    url = f"http://127.0.0.1:{free_port()}/global/global-bundle.pem"
    with pytest.raises(RdsCaError, match=r"cannot download .* RDS_CA_BUNDLE=<path>"):
        stage(None, url=url, staged=staged)


def test_a_missing_file_is_named(staged: Path) -> None:
    with pytest.raises(RdsCaError, match=r"RDS_CA_BUNDLE=/nonexistent is not a file"):
        stage(Path("/nonexistent"), staged=staged)


@pytest.mark.parametrize(
    "content", [b"", b"<html>Access Denied</html>\n", b"-----BEGIN PRIVATE KEY-----\n"]
)
def test_anything_but_ca_certificates_is_refused_even_unpinned(
    tmp_path: Path, staged: Path, content: bytes
) -> None:
    path = tmp_path / "bundle.pem"
    path.write_bytes(content)
    with pytest.raises(RdsCaError, match=str(path)):
        stage(path, unpinned=True, staged=staged)
    assert not staged.exists()


def test_unpinned_needs_a_given_bundle_and_is_marked(ca: Path, staged: Path) -> None:
    with pytest.raises(RdsCaError, match="--rds-ca-bundle"):
        stage(None, unpinned=True, staged=staged)
    bundle = stage(ca, unpinned=True, staged=staged)
    assert bundle.kind == UNPINNED
    assert staged.read_bytes() == ca.read_bytes()


def test_make_image_with_a_missing_bundle_says_so_in_one_line() -> None:
    # Stops before podman or the network is touched.
    done = subprocess.run(
        [sys.executable, "-m", "tools.image", "--rds-ca-bundle", "/nonexistent"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"make image: RDS_CA_BUNDLE=/nonexistent is not a file; give the path of AWS's RDS CA "
        f"bundle ({rds_ca.URL}), or leave RDS_CA_BUNDLE unset to download it."
    ]


PIN = "a" * 64


@pytest.mark.parametrize(
    ("labels", "carried", "why"),
    [
        ({LABEL: UNPINNED}, "b" * 64, f"{LABEL}=unpinned"),
        ({}, PIN, f"{LABEL}=\\(none\\)"),
        ({LABEL: PINNED}, "b" * 64, f"sha256 {'b' * 64}, not the one pinned"),
        ({LABEL: PINNED}, "", "sha256 \\(none\\)"),
    ],
)
def test_the_release_gate_refuses(labels: dict[str, str], carried: str, why: str) -> None:
    with pytest.raises(NotReleasable, match=why):
        require_releasable("img:1", labels, carried, PIN)


def test_the_release_gate_passes_a_pinned_image() -> None:
    require_releasable("img:1", {LABEL: PINNED}, PIN, PIN)
