"""`make image`: the service image built with podman from app/Dockerfile, on a Debian 13 base
from the registry or bootstrapped from the Debian mirror; saved, measured, and described by an
SBOM under build/image/ (docs/image.md)."""
