"""EKS: a private API endpoint (or a public one limited to listed CIDRs) that the deployer can
still reach, envelope encryption of Kubernetes secrets with KMS, the control-plane logs, a
Kubernetes version inside standard support, NetworkPolicies that are enforced, and admin
access entries for real principals of the deploying account."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.config import PolicyConfigError, config_schema, integer, strings
from policies.eks_versions import STANDARD_SUPPORT, end_of_standard_support, in_standard_support
from policies.joins import referenced
from policies.kubernetes import is_service_release
from policies.props import (
    as_items,
    as_number,
    as_strings,
    is_true,
    lookup,
    lookup_known,
    parse_json_document,
)

CLUSTER = "aws:eks/cluster:Cluster"
ADDON = "aws:eks/addon:Addon"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ACCESS_POLICY_ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
KMS_KEY = "aws:kms/key:Key"
ANYWHERE = frozenset({"0.0.0.0/0", "::/0"})
HTTPS = 443
ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"
# Rules that admit traffic to a security group: inline blocks are on groups the program
# creates, so the cluster's own group (EKS creates it) is opened by standalone rules.
INGRESS_RULES = frozenset(
    {
        "aws:ec2/securityGroupRule:SecurityGroupRule",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    }
)
# Account IDs AWS's documentation uses in its examples (IAM User Guide, EKS and STS
# references): an ARN in one of them was copied from a page, it names no principal of yours.
DOCUMENTATION_ACCOUNTS = frozenset(
    {
        "111122223333",
        "444455556666",
        "777788889999",
        "123456789012",
        "111111111111",
        "222222222222",
        "333333333333",
        "555555555555",
        "999999999999",
    }
)


def _endpoint(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != CLUSTER:
        return
    private = is_true(lookup(args.props, "vpcConfig.endpointPrivateAccess"))
    # EKS opens the public endpoint unless it is turned off explicitly.
    public = lookup(args.props, "vpcConfig.endpointPublicAccess") is not False
    if not public:
        if not private:
            report(f"'{args.name}' has no API endpoint: set endpoint_private_access=True.", None)
        return
    cidrs = as_strings(lookup(args.props, "vpcConfig.publicAccessCidrs"))
    if not cidrs or ANYWHERE & set(cidrs):
        shown = ", ".join(cidrs) if cidrs else "0.0.0.0/0 (the default)"
        report(
            f"'{args.name}' serves its API to the internet ({shown}): set "
            "endpoint_public_access=False with endpoint_private_access=True, or list the "
            "allowed public_access_cidrs.",
            None,
        )


def _secrets_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != CLUSTER:
        return
    key = lookup(args.props, "encryptionConfig.provider.keyArn")
    resources = as_strings(lookup(args.props, "encryptionConfig.resources"))
    if not key or "secrets" not in resources:
        report(
            f"'{args.name}' does not envelope-encrypt Kubernetes secrets: set "
            'encryption_config with resources=["secrets"] and a KMS key_arn.',
            None,
        )


def _control_plane_logs(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != CLUSTER:
        return
    required = strings(args.get_config(), "requiredClusterLogTypes")
    enabled = set(as_strings(lookup(args.props, "enabledClusterLogTypes")))
    missing = [log_type for log_type in required if log_type not in enabled]
    if missing:
        report(
            f"'{args.name}' does not log {', '.join(missing)}: add them to "
            "enabled_cluster_log_types.",
            None,
        )


def _check_date(config: Mapping[str, Any]) -> date:
    raw = config.get("supportCheckDate") or ""
    if not isinstance(raw, str):
        raise PolicyConfigError(f"policy config 'supportCheckDate' must be a string, got {raw!r}")
    if not raw:
        return date.today()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise PolicyConfigError(
            f"policy config 'supportCheckDate' must be YYYY-MM-DD, got {raw!r}"
        ) from None


def _standard_support(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != CLUSTER:
        return
    config = args.get_config()
    today = _check_date(config)
    margin = integer(config, "minStandardSupportDays", minimum=0)
    version = lookup(args.props, "version")
    supported = ", ".join(in_standard_support(str(version), today)) or "none listed"
    if not isinstance(version, str):
        report(
            f"'{args.name}' leaves its Kubernetes version to EKS's default: pin one in "
            f"standard support ({supported}).",
            None,
        )
    else:
        end = end_of_standard_support(version)
        if end is None:
            report(
                f"'{args.name}' runs Kubernetes {version}, which policies/eks_versions.py does "
                f"not date ({', '.join(STANDARD_SUPPORT)}): add its EKS support dates.",
                None,
            )
        elif (end - today).days < margin:
            when = "ended" if end <= today else "ends"
            report(
                f"'{args.name}' runs Kubernetes {version}, whose EKS standard support {when} "
                f"on {end.isoformat()} (extended support is billed per cluster hour): upgrade "
                f"to a version in standard support ({supported}).",
                None,
            )
    support_type = lookup(args.props, "upgradePolicy.supportType")
    if support_type != "STANDARD":
        report(
            f"'{args.name}' has upgrade_policy support_type {support_type or 'unset (EXTENDED)'}: "
            "set STANDARD so that EKS upgrades the cluster instead of billing extended support.",
            None,
        )


def _enables_network_policy(addon: PolicyResource) -> bool:
    values = lookup(addon.props, "configurationValues")
    document = parse_json_document(values)
    return document is not None and document.get("enableNetworkPolicy") == "true"


def _network_policy_enforced(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    releases = [
        r
        for r in args.resources
        if is_service_release(r.resource_type, r.props, config)
        and is_true(lookup(r.props, "values.networkPolicy.enabled"))
    ]
    if not releases:
        return
    cni = [
        r
        for r in args.resources
        if r.resource_type == ADDON and lookup(r.props, "addonName") == "vpc-cni"
    ]
    if not any(_enables_network_policy(addon) for addon in cni):
        names = ", ".join(f"'{r.name}'" for r in releases)
        report(
            f"{names} renders NetworkPolicies, but no vpc-cni add-on of this stack sets "
            'configuration_values {"enableNetworkPolicy": "true"}: EKS would accept the '
            "policies and enforce none.",
            releases[0].urn,
        )


def _opens_https(rule: PolicyResource) -> bool:
    props = rule.props
    if rule.resource_type == "aws:ec2/securityGroupRule:SecurityGroupRule":
        if lookup(props, "type") != "ingress":
            return False
        protocol = lookup(props, "protocol")
    else:
        protocol = lookup(props, "ipProtocol")
    low, high = as_number(lookup(props, "fromPort")), as_number(lookup(props, "toPort"))
    if str(protocol) in ("-1", "all"):
        return True
    return (
        str(protocol) in ("tcp", "6")
        and low is not None
        and high is not None
        and (low <= HTTPS <= high)
    )


def _cluster_groups(cluster: PolicyResource) -> list[str]:
    value = lookup_known(cluster.props, "vpcConfig.clusterSecurityGroupId")
    return [value] if isinstance(value, str) and value else []


def _endpoint_reachable(args: StackValidationArgs, report: ReportViolation) -> None:
    clusters = [r for r in args.resources if r.resource_type == CLUSTER]
    rules = [r for r in args.resources if r.resource_type in INGRESS_RULES and _opens_https(r)]
    for cluster in clusters:
        public = lookup(cluster.props, "vpcConfig.endpointPublicAccess") is not False
        cidrs = as_strings(lookup(cluster.props, "vpcConfig.publicAccessCidrs"))
        if public and cidrs and not ANYWHERE & set(cidrs):
            continue  # the deployer's listed CIDRs (eks-private-endpoint refuses 0.0.0.0/0)
        runner_rules = [
            rule
            for rule in rules
            if referenced(rule, "securityGroupId", [cluster], _cluster_groups) is cluster
        ]
        if public or runner_rules:
            continue
        report(
            f"'{cluster.name}' has a private endpoint only and nothing admits a deployer on 443: "
            "the same `pulumi up` installs the Kubernetes part and could not reach the API. "
            "List the deployer's CIDRs (public endpoint), or admit the in-VPC runner on the "
            "cluster security group.",
            cluster.urn,
        )


def account_of(arn: str) -> str | None:
    parts = arn.split(":")
    if len(parts) > 5 and parts[0] == "arn" and len(parts[4]) == 12 and parts[4].isdigit():
        return parts[4]
    return None


def _root_principals(key: PolicyResource) -> Iterable[str]:
    document = parse_json_document(lookup_known(key.props, "policy"))
    if document is None:
        return []
    found = []
    for statement in as_items(document.get("Statement")):
        principal = statement.get("Principal") if isinstance(statement, Mapping) else None
        aws = principal.get("AWS") if isinstance(principal, Mapping) else None
        found += [arn for arn in as_strings(aws) if arn.endswith(":root")]
    return found


def deploying_accounts(resources: Iterable[PolicyResource]) -> set[str]:
    """The account the stack deploys to, as its resources show it: the account root its key
    policies trust (the program writes it from the caller's identity) and known ARNs."""
    accounts: set[str] = set()
    for resource in resources:
        if resource.resource_type == KMS_KEY:
            accounts |= {a for arn in _root_principals(resource) if (a := account_of(arn))}
        if resource.resource_type in (CLUSTER, KMS_KEY):
            arn = lookup_known(resource.props, "arn")
            if isinstance(arn, str) and (account := account_of(arn)):
                accounts.add(account)
    return accounts


def _admin_entries(args: StackValidationArgs, report: ReportViolation) -> None:
    accounts = deploying_accounts(args.resources)
    principals = [
        r for r in args.resources if r.resource_type in (ACCESS_ENTRY, ACCESS_POLICY_ASSOCIATION)
    ]
    for resource in principals:
        arn = lookup_known(resource.props, "principalArn")
        if not isinstance(arn, str):
            continue  # a role created in this run: its account is the deploying one
        account = account_of(arn)
        if account in DOCUMENTATION_ACCOUNTS:
            report(
                f"'{resource.name}' gives cluster access to {arn}, in AWS's documentation "
                f"account {account}: nobody can use it, so no one administers the cluster. "
                "Name a principal of the deploying account (the deployer gets one by itself).",
                resource.urn,
            )
        elif account is not None and accounts and account not in accounts:
            report(
                f"'{resource.name}' gives cluster access to {arn}, outside the deploying "
                f"account ({', '.join(sorted(accounts))}).",
                resource.urn,
            )
    for cluster in [r for r in args.resources if r.resource_type == CLUSTER]:
        if is_true(
            lookup_known(cluster.props, "accessConfig.bootstrapClusterCreatorAdminPermissions")
        ):
            continue
        admins = [
            r
            for r in args.resources
            if r.resource_type == ACCESS_POLICY_ASSOCIATION
            and str(lookup_known(r.props, "policyArn")).endswith(f"/{ADMIN_POLICY}")
        ]
        if not admins:
            report(
                f"'{cluster.name}' has no {ADMIN_POLICY} access entry and does not make its "
                "creator an admin: the deployer is locked out of its own cluster.",
                cluster.urn,
            )


PRIVATE_ENDPOINT = ResourceValidationPolicy(
    name="eks-private-endpoint",
    description="The EKS API is private, or public only to listed CIDRs.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_endpoint,
)
SECRETS_ENCRYPTION = ResourceValidationPolicy(
    name="eks-secrets-encryption",
    description="EKS envelope-encrypts Kubernetes secrets with a KMS key.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_secrets_encryption,
)
CONTROL_PLANE_LOGS = ResourceValidationPolicy(
    name="eks-control-plane-logs",
    description="EKS sends the required control-plane logs to CloudWatch.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_control_plane_logs,
    config_schema=config_schema("requiredClusterLogTypes"),
)

STANDARD_SUPPORT_VERSION = ResourceValidationPolicy(
    name="eks-version-in-standard-support",
    description="EKS runs a Kubernetes version inside standard support, upgraded at its end.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_standard_support,
    config_schema=config_schema("minStandardSupportDays", "supportCheckDate"),
)
NETWORK_POLICY_ENFORCED = StackValidationPolicy(
    name="eks-network-policy-enforced",
    description="When the service renders NetworkPolicies, the VPC CNI enforces them.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_network_policy_enforced,
    config_schema=config_schema("serviceChart"),
)
ENDPOINT_REACHABLE = StackValidationPolicy(
    name="eks-endpoint-reachable-by-deployer",
    description="The deployer reaches the EKS API: listed public CIDRs, or an in-VPC runner.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_endpoint_reachable,
)
ADMIN_ENTRIES = StackValidationPolicy(
    name="eks-admin-access-entries",
    description="EKS admin access entries name real principals of the deploying account.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_admin_entries,
)

POLICIES = [
    PRIVATE_ENDPOINT,
    SECRETS_ENCRYPTION,
    CONTROL_PLANE_LOGS,
    STANDARD_SUPPORT_VERSION,
    NETWORK_POLICY_ENFORCED,
    ENDPOINT_REACHABLE,
    ADMIN_ENTRIES,
]
