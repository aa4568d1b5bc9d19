"""The release's image, by digest: the one ECR holds for the configured tag, looked up when the
stack is deployed, so the chart never installs a tag that does not exist (the pre-install
migration Job could not pull it, the hook would fail and Helm roll back) and never a tag that
could point elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config import ImageConfig


class ImageNotFoundError(pulumi.RunError):
    """The image to release is not in the registry; the message says what to push."""


@dataclass(frozen=True)
class ReleaseImage:
    repository_url: str
    tag: str
    digest: str


Lookup = Callable[..., Any]


def release_image(
    *,
    registry_id: str,
    region: str,
    repository_name: str,
    image: ImageConfig,
    stack_file: str,
    lookup: Lookup = aws.ecr.get_image,
    opts: pulumi.InvokeOptions | None = None,
) -> ReleaseImage:
    """The configured image as ECR holds it. `lookup` is `aws.ecr.get_image`, which fails
    when the repository or the tag does not exist."""
    url = f"{registry_id}.dkr.ecr.{region}.amazonaws.com/{repository_name}"
    try:
        found = lookup(
            registry_id=registry_id,
            repository_name=repository_name,
            image_tag=image.tag,
            opts=opts,
        )
    except Exception as error:  # the provider raises a bare Exception naming the API error
        raise ImageNotFoundError(
            f"{stack_file}: the release image {url}:{image.tag} is not in ECR ({error}); "
            "create the repository and push the image first (docs/deploy.md, steps 3 and 4)"
        ) from error
    digest = str(found.image_digest)
    if image.digest is not None and image.digest != digest:
        raise ImageNotFoundError(
            f"{stack_file}: agent-platform:release.image.digest is {image.digest}, but ECR "
            f"holds {digest} for {url}:{image.tag}; set the digest the image build printed"
        )
    return ReleaseImage(repository_url=url, tag=image.tag, digest=digest)
