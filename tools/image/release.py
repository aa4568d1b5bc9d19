"""`python -m tools.image.release <image>`: the gate before an image is pushed to a stack's
registry (the main workflow runs it between `make image` and the push). It refuses an image
built with an unpinned RDS CA bundle (the tests' throw-away CA: `--rds-ca-unpinned`), and one
whose bundle (the file in the image, not only its label) is not the one pinned at this commit."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from infra.config import DatabaseConfig
from tools.image.build import podman
from tools.image.podman import Podman, PodmanError
from tools.image.rds_ca import LABEL, PIN_NAME, PINNED, pinned_sha256

# Where the Dockerfile puts the bundle: database.sslRootCert's default (tests/app/test_dockerfile
# checks the Dockerfile copies it there).
IN_IMAGE = str(DatabaseConfig.model_fields["ssl_root_cert"].default)


class NotReleasable(RuntimeError):
    """One sentence: why this image must not be pushed."""


def require_releasable(ref: str, labels: Mapping[str, str], carried: str, pinned: str) -> None:
    """`carried`: the sha256 of the bundle file in the image."""
    kind = labels.get(LABEL)
    if kind != PINNED:
        raise NotReleasable(
            f"{ref} is not a release image: its label {LABEL}={kind or '(none)'} says its RDS "
            f"CA bundle is not the pinned one; build it with `make image` (docs/image.md)."
        )
    if carried != pinned:
        raise NotReleasable(
            f"{ref} carries an RDS CA bundle with sha256 {carried or '(none)'}, not the one "
            f"pinned at this commit ({pinned}, {PIN_NAME}); rebuild it with "
            "`make image`."
        )


def _carried(pm: Podman, ref: str) -> str:
    found = pm.run(
        "run", "--rm", "--network", "none", "--health-cmd", "none",
        "--entrypoint", "sha256sum", ref, IN_IMAGE, check=False,
    )  # fmt: skip
    return found.stdout.split()[0] if found.returncode == 0 and found.stdout.strip() else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.image.release", description=__doc__)
    parser.add_argument("image", help="the local image to push")
    args = parser.parse_args(argv)
    try:
        pm = podman()
        labels = (pm.inspect(args.image).get("Config") or {}).get("Labels") or {}
        require_releasable(args.image, labels, _carried(pm, args.image), pinned_sha256())
    except (NotReleasable, PodmanError) as error:
        print(f"release: {error}", file=sys.stderr)
        return 1
    print(f"release: {args.image} carries the pinned RDS CA bundle")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
