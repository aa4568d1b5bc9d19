"""Reading resource properties the way CrossGuard hands them over.

Properties arrive as read-only proxies (`Mapping` / `Sequence`, not `dict` / `list`) that raise
`UnknownValueError` when a value is not known yet (during a preview, anything computed from
another resource's outputs). Numbers arrive as floats. These helpers accept all of that, so a
rule reads `lookup(props, "vpcConfig.endpointPrivateAccess")` and compares plain values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pulumi_policy.proxy import UnknownValueError

URN_PREFIX: Final = "urn:pulumi:"


class _Unknown:
    """A value the engine cannot know during a preview."""

    def __repr__(self) -> str:
        return "<unknown during preview>"


UNKNOWN: Final = _Unknown()


def is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_list(value: Any) -> bool:
    """A JSON array: any sequence but a string."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def lookup(props: Any, path: str) -> Any:
    """The value at a dotted path (`"vpcConfig.endpointPrivateAccess"`), or None when any step
    is missing. An unknown value raises `UnknownValueError`, which the CLI reports as "can't
    run during preview" rather than as a pass."""
    value = props
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def lookup_known(props: Any, path: str) -> Any:
    """Like `lookup`, but an unknown value comes back as `UNKNOWN` for rules that can decide
    without it (for example from a resource dependency instead of a name)."""
    try:
        return lookup(props, path)
    except UnknownValueError:
        return UNKNOWN


def is_true(value: Any) -> bool:
    return value is True


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def as_strings(value: Any) -> list[str]:
    """A list of strings from a string, a list, or nothing; non-strings are dropped."""
    if isinstance(value, str):
        return [value]
    if is_list(value):
        return [item for item in value if isinstance(item, str)]
    return []


def as_items(value: Any) -> list[Any]:
    """The items of a JSON array, or the value itself as one item (IAM allows both)."""
    if value is None:
        return []
    if is_list(value):
        return list(value)
    return [value]


def plain(value: Any) -> Any:
    """A deep copy as plain dicts and lists (for JSON, comparisons and error messages)."""
    if isinstance(value, Mapping):
        return {str(key): plain(value[key]) for key in value}
    if is_list(value):
        return [plain(item) for item in value]
    return value


def parse_json_document(value: Any) -> Mapping[str, Any] | None:
    """A JSON policy document given as a string or already as an object; None if neither."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return None
        if isinstance(parsed, dict):
            return parsed
    return None


def stack_of_urn(urn: str) -> str | None:
    """The stack in `urn:pulumi:<stack>::<project>::<type>::<name>`, or None for anything else."""
    if not urn.startswith(URN_PREFIX):
        return None
    stack = urn[len(URN_PREFIX) :].split("::", 1)[0]
    return stack or None


def tags_of(props: Any) -> dict[str, Any]:
    tags = lookup(props, "tags")
    if not isinstance(tags, Mapping):
        return {}
    return {str(key): tags[key] for key in tags}
