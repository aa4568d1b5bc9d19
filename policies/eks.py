"""EKS: a private API endpoint (or a public one limited to listed CIDRs), envelope
encryption of Kubernetes secrets with KMS, and the control-plane logs."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from policies.config import config_schema, strings
from policies.props import as_strings, is_true, lookup

CLUSTER = "aws:eks/cluster:Cluster"
ANYWHERE = frozenset({"0.0.0.0/0", "::/0"})


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

POLICIES = [PRIVATE_ENDPOINT, SECRETS_ENCRYPTION, CONTROL_PLANE_LOGS]
