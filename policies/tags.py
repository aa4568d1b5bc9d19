"""Tags: every taggable AWS resource carries the required tags (owner, environment,
cost-centre) with non-empty values.

"Taggable" means the type's inputs take a `tags` map (see `taggable_types`). Tags the
resource's AWS provider adds through `default_tags` count, as AWS applies them too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyProviderResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from policies.config import config_schema, strings
from policies.props import lookup, tags_of
from policies.taggable_types import taggable_types


def provider_default_tags(provider: PolicyProviderResource | None) -> dict[str, Any]:
    """The `default_tags` of an AWS provider. A provider's object inputs reach the engine as
    JSON strings, so both forms are read."""
    if provider is None or not provider.resource_type.startswith("pulumi:providers:aws"):
        return {}
    default_tags = lookup(provider.props, "defaultTags")
    if isinstance(default_tags, str):
        try:
            default_tags = json.loads(default_tags)
        except json.JSONDecodeError:
            return {}
    tags = lookup(default_tags, "tags")
    return dict(tags) if isinstance(tags, Mapping) else {}


def _required_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in taggable_types():
        return
    tags = {**provider_default_tags(args.provider), **tags_of(args.props)}
    required = strings(args.get_config(), "requiredTagKeys")
    missing = [key for key in required if not (isinstance(tags.get(key), str) and tags[key])]
    if missing:
        report(f"'{args.name}' lacks the tags {', '.join(missing)}.", None)


REQUIRED_TAGS = ResourceValidationPolicy(
    name="required-tags",
    description="Every taggable AWS resource carries the required tags.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_required_tags,
    config_schema=config_schema("requiredTagKeys"),
)

POLICIES = [REQUIRED_TAGS]
