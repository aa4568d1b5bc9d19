"""`python -m tools.image` (make image): build, save and report the service image."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from tools.image.build import SIZE_BUDGET_MB, build
from tools.image.podman import PodmanError
from tools.image.rds_ca import PIN_NAME, URL, RdsCaError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make image", description=__doc__)
    parser.add_argument(
        "--base",
        default=os.environ.get("IMAGE_BASE") or None,
        help="base image reference (default: the registry's debian slim, else a local bootstrap)",
    )
    parser.add_argument(
        "--refresh-base", action="store_true", help="bootstrap the Debian base again"
    )
    parser.add_argument(
        "--rds-ca-bundle",
        type=Path,
        default=os.environ.get("RDS_CA_BUNDLE") or None,
        help=f"the RDS CA bundle to build in (RDS_CA_BUNDLE; default: download {URL}); "
        f"checked against {PIN_NAME}",
    )
    parser.add_argument(
        "--rds-ca-unpinned",
        action="store_true",
        default=os.environ.get("RDS_CA_BUNDLE_UNPINNED") == "1",
        help="TEST IMAGES ONLY (RDS_CA_BUNDLE_UNPINNED=1): build with --rds-ca-bundle without "
        "checking it against the pin; the image is labelled io.agent-platform.rds-ca=unpinned, "
        "tagged under its own repository, and refused by the release gate",
    )
    args = parser.parse_args(argv)
    try:
        report = build(
            base=args.base,
            refresh_base=args.refresh_base,
            rds_ca_bundle=args.rds_ca_bundle,
            rds_ca_unpinned=args.rds_ca_unpinned,
        )
    except RdsCaError as error:
        print(error, file=sys.stderr)
        return 1
    except PodmanError as error:
        print(f"make image: {error}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        print(
            f"make image: {' '.join(map(str, error.cmd))} failed ({error.returncode})",
            file=sys.stderr,
        )
        return 1
    print(f"image:   {report.ref}")
    print(f"id:      {report.id}")
    print(f"digest:  {report.digest}")
    print(f"size:    {report.size_mb:.0f} MB (budget {SIZE_BUDGET_MB} MB)")
    print(f"base:    {report.base}")
    print(f"rds ca:  {report.rds_ca} (sha256 {report.rds_ca_sha256})")
    print(f"build:   {report.build_seconds:.0f} s")
    print(f"tarball: {report.tarball}")
    print(f"sbom:    {report.sbom}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
