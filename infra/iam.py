"""IAM policy documents as data, with least privilege enforced where they are built.

Every document the program writes goes through `policy_document`, which refuses an Allow
statement with a wildcard action or a wildcard resource (but for reads IAM cannot scope,
`UNSCOPED_READ_ACTIONS`): a mistake here fails `pulumi preview` instead of reaching an
account. Key policies are the one exception (their `Resource: "*"` means "this key") and are
built by `key_policy_document`, which still refuses `kms:*`.

One more narrow case: a write on `Resource: "*"` whose condition requires a tag that a
controller puts on everything it creates (`TAG_SCOPED_KEYS`). The AWS Load Balancer Controller
creates load balancers, target groups and security groups whose ARNs carry IDs AWS picks at
creation, so its published policy scopes them by the `elbv2.k8s.aws/cluster` tag instead of by
ARN (https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/deploy/installation/
#configure-iam, docs/install/iam_policy.json): the create must carry the tag
(`aws:RequestTag/...` not null) and every later write needs it on the resource
(`aws:ResourceTag/...` not null).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

STS_AUDIENCE = "sts.amazonaws.com"
# Reads for which IAM has no resource type (the Service Authorization Reference lists none),
# so `Resource: "*"` is the only way to grant them; they reveal metadata, change nothing.
UNSCOPED_READ_ACTIONS = frozenset(
    {
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:DescribeLaunchConfigurations",
        "autoscaling:DescribeScalingActivities",
        "autoscaling:DescribeTags",
        "ec2:DescribeImages",
        "ec2:DescribeInstanceTypes",
        "ec2:DescribeLaunchTemplateVersions",
        "ec2:GetInstanceTypesFromInstanceRequirements",
    }
)
# The AWS Load Balancer Controller's reads from its published policy (EC2 and Elastic Load
# Balancing describes, ACM's list): none has a resource type in the Service Authorization
# Reference, so they too are granted on `*`.
LOAD_BALANCER_READ_ACTIONS = frozenset(
    {
        "acm:ListCertificates",
        "ec2:DescribeAccountAttributes",
        "ec2:DescribeAddresses",
        "ec2:DescribeAvailabilityZones",
        "ec2:DescribeCoipPools",
        "ec2:DescribeInstances",
        "ec2:DescribeInternetGateways",
        "ec2:DescribeIpamPools",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeRouteTables",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeTags",
        "ec2:DescribeVpcPeeringConnections",
        "ec2:DescribeVpcs",
        "ec2:GetCoipPoolUsage",
        "ec2:GetSecurityGroupsForVpc",
        "elasticloadbalancing:DescribeCapacityReservation",
        "elasticloadbalancing:DescribeListenerAttributes",
        "elasticloadbalancing:DescribeListenerCertificates",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeLoadBalancerAttributes",
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeRules",
        "elasticloadbalancing:DescribeSSLPolicies",
        "elasticloadbalancing:DescribeTags",
        "elasticloadbalancing:DescribeTargetGroupAttributes",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DescribeTrustStores",
    }
)

# Tags whose presence (a `Null: false` condition) may stand in for an ARN: each is set only by
# the controller that owns the resources (see the module docstring for where that is documented).
TAG_SCOPED_KEYS = frozenset({"elbv2.k8s.aws/cluster"})


@dataclass(frozen=True)
class Account:
    """Where the program deploys: the ARNs it writes are built from these."""

    account_id: str
    partition: str
    region: str

    @property
    def root_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:root"

    def managed_policy_arn(self, name: str) -> str:
        return f"arn:{self.partition}:iam::aws:policy/{name}"


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _is_wildcard_action(action: Any) -> bool:
    return isinstance(action, str) and (action == "*" or action.endswith(":*"))


def _tag_scoped(statement: Mapping[str, Any]) -> bool:
    """The statement applies only to resources carrying (or created with) a controller's tag."""
    required = statement.get("Condition", {}).get("Null", {})
    return any(
        required.get(f"aws:{side}/{tag}") == "false"
        for tag in TAG_SCOPED_KEYS
        for side in ("RequestTag", "ResourceTag")
    )


def check_least_privilege(document: Mapping[str, Any], *, key_policy: bool = False) -> None:
    """Raise ValueError when an Allow statement grants `*` actions or (outside a key policy)
    `*` resources. Deny statements may be broad: they only take permissions away."""
    for statement in document["Statement"]:
        if statement.get("Effect") != "Allow":
            continue
        sid = statement.get("Sid", "<no Sid>")
        actions = _as_list(statement.get("Action", []))
        if "NotAction" in statement or any(_is_wildcard_action(a) for a in actions):
            raise ValueError(f"statement {sid}: wildcard action {actions}")
        if "Principal" in statement and not key_policy:
            continue  # a trust policy: its resource is the role itself
        resources = _as_list(statement.get("Resource", []))
        unscoped_reads = UNSCOPED_READ_ACTIONS | LOAD_BALANCER_READ_ACTIONS
        if resources == ["*"] and set(actions) <= unscoped_reads:
            continue
        if resources == ["*"] and not key_policy and _tag_scoped(statement):
            continue
        if not key_policy and ("NotResource" in statement or "*" in resources):
            raise ValueError(f"statement {sid}: wildcard resource {resources}")


def allow(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]],
    conditions: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": list(resources),
    }
    if conditions:
        statement["Condition"] = {op: dict(values) for op, values in conditions.items()}
    return statement


def _checked(document: dict[str, Any], *, key_policy: bool) -> str:
    check_least_privilege(document, key_policy=key_policy)
    return json.dumps(document, sort_keys=True)


def policy_document(statements: Sequence[Mapping[str, Any]]) -> pulumi.Output[str]:
    """A JSON policy document; statements may hold Outputs (ARNs) anywhere."""
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return pulumi.Output.from_input(document).apply(lambda d: _checked(d, key_policy=False))


def key_policy_document(statements: Sequence[Mapping[str, Any]]) -> pulumi.Output[str]:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return pulumi.Output.from_input(document).apply(lambda d: _checked(d, key_policy=True))


def service_trust_policy(service: str, account: Account) -> str:
    """A role only `service` may assume, and only on behalf of this account."""
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ServiceAssumesRole",
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account.account_id}},
            }
        ],
    }
    return json.dumps(document, sort_keys=True)


def ec2_trust_policy() -> str:
    """EC2 instances (the node group) assume the role; no source-account key exists here."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "NodesAssumeRole",
                    "Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        sort_keys=True,
    )


def irsa_trust_policy(
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer: pulumi.Input[str],
    namespace: str,
    service_account: str,
) -> pulumi.Output[str]:
    """Only the pods of one Kubernetes service account may assume the role (IRSA): the
    token's `sub` names the account and its `aud` is STS."""

    def build(args: list[str]) -> str:
        provider_arn, issuer = args
        host = issuer.removeprefix("https://")
        document = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ServiceAccountAssumesRole",
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                            f"{host}:aud": STS_AUDIENCE,
                        }
                    },
                }
            ],
        }
        return json.dumps(document, sort_keys=True)

    return pulumi.Output.all(oidc_provider_arn, oidc_issuer).apply(build)
