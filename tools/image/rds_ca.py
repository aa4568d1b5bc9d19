"""The Amazon RDS CA bundle the image carries (DATABASE_URL's sslrootcert): an input to the build,
never committed. `make image` takes it from RDS_CA_BUNDLE, else downloads AWS's published bundle,
checks it against the pin committed in app/certs/, and stages it where the Dockerfile copies it
from (the Dockerfile checks the pin again). An unpinned bundle (tests' throw-away CA) is built
only when asked for by name, and the image is labelled so the release path refuses it
(tools/image/release.py; docs/image.md)."""

from __future__ import annotations

import hashlib
import shutil
import ssl
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tools.kit.programs import REPO_ROOT

# AWS's published bundle (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/
# UsingWithRDS.SSL.html), with no published checksum: the pin is the project's reviewed one.
URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
DOWNLOAD_TIMEOUT = 30.0
NAME = "rds-global-bundle.pem"
PIN_NAME = f"app/certs/{NAME}.sha256"
PIN = REPO_ROOT / PIN_NAME
# Inside the build context (/.dockerignore lets this directory in); build output, never committed.
STAGED = REPO_ROOT / "build" / "image" / "rds-ca" / NAME
# The image labels: which kind of bundle the image carries (the release gate accepts PINNED only,
# then checks the file in the image against the pin) and its checksum, for whoever inspects it.
LABEL = "io.agent-platform.rds-ca"
LABEL_SHA256 = "io.agent-platform.rds-ca.sha256"
PINNED = "pinned"
UNPINNED = "unpinned"
REFRESH = "docs/image.md, 'Refreshing the pin'"


class RdsCaError(RuntimeError):
    """One sentence: which bundle, what is wrong, what to do."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    sha256: str
    kind: str  # PINNED or UNPINNED
    source: str


def pinned_sha256(pin: Path = PIN) -> str:
    return pin.read_text().split()[0]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _certificates(path: Path, source: str) -> int:
    """How many CA certificates the file holds; refuses anything else (an HTML error page, a
    private key, an empty file)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=str(path))
    except ssl.SSLError as error:
        raise RdsCaError(
            f"make image: the RDS CA bundle {source} is not a PEM file of CA certificates "
            f"({error.reason or error}); give AWS's bundle ({URL})."
        ) from error
    count = len(context.get_ca_certs())
    if count == 0:
        raise RdsCaError(f"make image: the RDS CA bundle {source} holds no CA certificate.")
    return count


def download(url: str, into: Path, timeout: float = DOWNLOAD_TIMEOUT) -> Path:
    target = into / NAME
    try:
        # S310: AWS's https URL, or a test's loopback one.
        with urllib.request.urlopen(url, timeout=timeout) as response, target.open("wb") as out:  # noqa: S310
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise RdsCaError(
            f"make image: cannot download the RDS CA bundle from {url} ({reason}); on a machine "
            "without access to AWS give a copy with RDS_CA_BUNDLE=<path> (checked against "
            f"{PIN_NAME})."
        ) from error
    return target


def stage(
    given: Path | None,
    *,
    unpinned: bool = False,
    url: str = URL,
    staged: Path = STAGED,
    pin: Path = PIN,
) -> Bundle:
    """Take the bundle (given, else downloaded from `url`), check it, copy it to `staged`."""
    if unpinned and given is None:
        raise RdsCaError(
            "make image: --rds-ca-unpinned builds a test image from a CA bundle you give; "
            "add --rds-ca-bundle <path> (RDS_CA_BUNDLE)."
        )
    with tempfile.TemporaryDirectory(prefix="rds-ca-") as work:
        if given is None:
            path, source = download(url, Path(work)), url
        else:
            path, source = given, str(given)
            if not path.is_file():
                raise RdsCaError(
                    f"make image: RDS_CA_BUNDLE={given} is not a file; give the path of AWS's "
                    f"RDS CA bundle ({URL}), or leave RDS_CA_BUNDLE unset to download it."
                )
        _certificates(path, source)
        actual = _sha256(path)
        if not unpinned:
            expected = pinned_sha256(pin)
            if actual != expected:
                raise RdsCaError(
                    f"make image: the RDS CA bundle {source} has sha256 {actual}, not the "
                    f"pinned {expected} ({PIN_NAME}); if AWS has published "
                    f"a new bundle, review it and refresh the pin ({REFRESH})."
                )
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.unlink(missing_ok=True)
        shutil.copyfile(path, staged)
    return Bundle(staged, actual, UNPINNED if unpinned else PINNED, source)
