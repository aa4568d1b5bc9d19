"""IAM: no statement allows every action on every resource, and no inline policy grants
administrator rights (every action, or all of IAM, which lets its holder grant itself
the rest)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from policies.props import as_items, as_strings, is_list, lookup, parse_json_document

MANAGED_POLICY = "aws:iam/policy:Policy"
ROLE = "aws:iam/role:Role"
# Policies embedded in one principal: inline policies.
INLINE_POLICY_TYPES = frozenset(
    {
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
    }
)
EVERY_ACTION = frozenset({"*", "*:*"})
ADMIN_ACTIONS = EVERY_ACTION | {"iam:*"}


def _documents(args: ResourceValidationArgs, *, inline_only: bool) -> Iterator[tuple[str, Any]]:
    """(where, document) for each identity policy document the resource carries."""
    if args.resource_type in INLINE_POLICY_TYPES or (
        args.resource_type == MANAGED_POLICY and not inline_only
    ):
        yield "policy", lookup(args.props, "policy")
    elif args.resource_type == ROLE:
        inline = lookup(args.props, "inlinePolicies")
        for index, entry in enumerate(inline if is_list(inline) else []):
            name = lookup(entry, "name") or f"#{index}"
            yield f"inline policy '{name}'", lookup(entry, "policy")


def _allow_statements(document: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for index, statement in enumerate(as_items(document.get("Statement"))):
        if isinstance(statement, Mapping) and str(statement.get("Effect", "")).lower() == "allow":
            yield str(statement.get("Sid") or f"#{index}"), statement


def _actions(statement: Mapping[str, Any]) -> set[str]:
    return {action.lower() for action in as_strings(statement.get("Action"))}


def _check(
    args: ResourceValidationArgs,
    report: ReportViolation,
    *,
    inline_only: bool,
    offends: Callable[[Mapping[str, Any]], bool],
    problem: str,
) -> None:
    for where, raw in _documents(args, inline_only=inline_only):
        if raw is None:
            continue
        document = parse_json_document(raw)
        if document is None:
            # Fail closed: a document this rule cannot read is one it cannot pass.
            report(f"'{args.name}' {where} is not a JSON policy document.", None)
            continue
        for sid, statement in _allow_statements(document):
            if offends(statement):
                report(f"'{args.name}' {where}, statement {sid}: {problem}", None)


def _wildcard_on_wildcard(statement: Mapping[str, Any]) -> bool:
    return bool(_actions(statement) & EVERY_ACTION) and "*" in as_strings(statement.get("Resource"))


def _admin(statement: Mapping[str, Any]) -> bool:
    return bool(_actions(statement) & ADMIN_ACTIONS)


def _no_wildcard_admin(args: ResourceValidationArgs, report: ReportViolation) -> None:
    _check(
        args,
        report,
        inline_only=False,
        offends=_wildcard_on_wildcard,
        problem='allows "*" actions on "*" resources: name the actions and resources.',
    )


def _no_inline_admin(args: ResourceValidationArgs, report: ReportViolation) -> None:
    _check(
        args,
        report,
        inline_only=True,
        offends=_admin,
        problem="grants administrator rights (every action or iam:*) inline: grant only "
        "the actions the principal needs.",
    )


NO_WILDCARD_ADMIN = ResourceValidationPolicy(
    name="iam-no-wildcard-admin",
    description='IAM policies do not allow "*" actions on "*" resources.',
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_no_wildcard_admin,
)
NO_INLINE_ADMIN = ResourceValidationPolicy(
    name="iam-no-inline-admin",
    description="No inline IAM policy grants administrator rights.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_no_inline_admin,
)

POLICIES = [NO_WILDCARD_ADMIN, NO_INLINE_ADMIN]
