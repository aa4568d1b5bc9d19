"""Joining resources in a stack policy: which bucket a `BucketVersioning` configures, which
security group a rule belongs to.

During a preview a new resource's ID is unknown, so a reference such as `bucket=bucket.id`
cannot be compared by value; the engine still knows which resource it came from
(`property_dependencies`). Offline, the recorded values are known and compare directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from pulumi_policy import PolicyResource

from policies.props import lookup_known


def referenced(
    resource: PolicyResource,
    prop: str,
    candidates: Sequence[PolicyResource],
    names: Callable[[PolicyResource], Iterable[str]],
) -> PolicyResource | None:
    """The candidate that `resource`'s property `prop` refers to, or None (a resource of
    another stack, or one this stack does not manage)."""
    by_urn = {candidate.urn: candidate for candidate in candidates}
    for dependency in resource.property_dependencies.get(prop, []):
        if dependency.urn in by_urn:
            return by_urn[dependency.urn]
    value = lookup_known(resource.props, prop)
    if isinstance(value, str):
        for candidate in candidates:
            if value in set(names(candidate)):
                return candidate
    # Recordings without property dependencies: a single dependency of the right type.
    depended = [d for d in resource.dependencies if d.urn in by_urn]
    if len(depended) == 1:
        return by_urn[depended[0].urn]
    return None


def known_strings(resource: PolicyResource, *props: str) -> list[str]:
    """The known string values of `props` (an ID, a name) that others may refer to."""
    values = [lookup_known(resource.props, prop) for prop in props]
    return [value for value in values if isinstance(value, str) and value]
