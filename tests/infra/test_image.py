"""B5: the release installs the image ECR holds, by digest, and a missing image stops the
program with a sentence saying what to push, before anything is installed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from infra.config import ImageConfig
from infra.image import ImageNotFoundError, release_image
from tools.plan.offline import OfflineRun

DIGEST = "sha256:" + "ab" * 32


def _found(**_: Any) -> SimpleNamespace:
    return SimpleNamespace(image_digest=DIGEST)


def _missing(**kwargs: Any) -> SimpleNamespace:
    raise Exception(
        "invoke of aws:ecr/getImage:getImage failed: ImageNotFoundException: The image with "
        f"imageId {{imageTag:'{kwargs['image_tag']}'}} does not exist"
    )


def _resolve(image: ImageConfig, lookup: Any) -> Any:
    return release_image(
        registry_id="406812953771",
        region="eu-west-1",
        repository_name="agent-prod/langgraph-agent",
        image=image,
        stack_file="Pulumi.prod.yaml",
        lookup=lookup,
    )


def test_the_tag_resolves_to_the_digest_ecr_holds() -> None:
    image = _resolve(ImageConfig(tag="0.1.0"), _found)
    assert image.digest == DIGEST
    assert image.repository_url.endswith("/agent-prod/langgraph-agent")


def test_a_missing_image_names_the_image_and_the_next_step() -> None:
    with pytest.raises(ImageNotFoundError) as caught:
        _resolve(ImageConfig(tag="0.1.0"), _missing)
    message = str(caught.value)
    assert message.startswith("Pulumi.prod.yaml: the release image ")
    assert "agent-prod/langgraph-agent:0.1.0 is not in ECR" in message
    assert "ImageNotFoundException" in message
    assert "push the image first" in message


def test_a_configured_digest_must_be_the_tags() -> None:
    other = "sha256:" + "cd" * 32
    with pytest.raises(ImageNotFoundError, match=r"release.image.digest is sha256:cdcd"):
        _resolve(ImageConfig(tag="0.1.0", digest=other), _found)
    assert _resolve(ImageConfig(tag="0.1.0", digest=DIGEST), _found).digest == DIGEST


def test_the_release_pulls_by_digest(run: OfflineRun) -> None:
    image = run.service_release_values()["image"]
    assert image["digest"].startswith("sha256:")
    assert run.outputs["releaseImage"] == f"{image['repository']}@{image['digest']}"
