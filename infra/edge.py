"""The internet-facing edge: an NLB that the AWS Load Balancer Controller provisions for the
Envoy Gateway proxy, TLS terminated on the NLB with an ACM certificate validated through the
stack's Route 53 zone, traffic restricted to the configured source ranges.

This module declares the AWS half (certificate, its DNS validation, the controller's IRSA role)
and describes the Kubernetes half (EnvoyProxy, GatewayClass, Gateway) as data that the release
component applies once the add-ons (and their CRDs) are installed.

Why this shape:
- ingress-nginx is retired (no fixes since March 2026), and the in-tree cloud provider's NLB
  opened 0.0.0.0/0 on the nodes' security group. A Service with `loadBalancerClass:
  service.k8s.aws/nlb` is ignored by the in-tree controller and reconciled by the AWS Load
  Balancer Controller, which gives the NLB its own security groups holding the source ranges
  (https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/nlb/,
  .../guide/service/annotations/#security-groups).
- Envoy Gateway implements HTTPRoute (`gateway.networking.k8s.io/v1`), which Flagger's
  `gatewayapi:v1` provider weights for the canary
  (https://docs.flagger.app/tutorials/gatewayapi-progressive-delivery; fluxcd/flagger
  pkg/router/gateway_api.go generates the route from `service.gatewayRefs` and `hosts`).
- ACM certificates cannot be mounted into a pod, so TLS ends on the NLB (`aws-load-balancer-
  ssl-cert` on port 443) and the NLB forwards plain HTTP to the Gateway's listener on 443.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config import EdgeConfig, StackConfigError
from infra.iam import (
    LOAD_BALANCER_READ_ACTIONS,
    Account,
    allow,
    irsa_trust_policy,
    policy_document,
)
from infra.tags import Tags

LOAD_BALANCER_CONTROLLER_NAMESPACE = "kube-system"
LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT = "aws-load-balancer-controller"
# The tag the controller puts on every load balancer, target group and security group it
# creates; its policy scopes writes by it.
CLUSTER_TAG = "elbv2.k8s.aws/cluster"
# Where Envoy Gateway runs its controller and, by default, the Gateways' Envoy proxies.
GATEWAY_NAMESPACE = "envoy-gateway-system"
GATEWAY_NAME = "public"
GATEWAY_CLASS = "envoy-public"
ENVOY_PROXY_NAME = "public-nlb"
# The proxies' Service: a fixed name, so Flagger's load test can reach the Gateway in-cluster.
GATEWAY_SERVICE = "envoy-public"
GATEWAY_LISTENER = "https"
GATEWAY_PORT = 443
ENVOY_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"
# TLS 1.3 and 1.2 only (https://docs.aws.amazon.com/elasticloadbalancing/latest/network/
# describe-ssl-policies.html).
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True)
class GatewayObject:
    """A cluster object the release component applies after the add-ons."""

    name: str
    api_version: str
    kind: str
    metadata: dict[str, Any]
    spec: dict[str, Any]


def load_balancer_annotations(
    config: EdgeConfig, certificate_arn: pulumi.Input[str]
) -> dict[str, pulumi.Input[str]]:
    """The NLB the controller builds for the proxies' Service."""
    return {
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
        # Pod IPs as targets: no node port, nothing opened on the nodes beyond the pods' port.
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
        "service.beta.kubernetes.io/aws-load-balancer-ssl-cert": certificate_arn,
        "service.beta.kubernetes.io/aws-load-balancer-ssl-ports": str(GATEWAY_PORT),
        "service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy": TLS_POLICY,
        "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled": "true",
    }


def gateway_objects(config: EdgeConfig, certificate_arn: pulumi.Input[str]) -> list[GatewayObject]:
    """EnvoyProxy (the proxies' Service as an LBC-managed NLB), GatewayClass, Gateway."""
    proxy = GatewayObject(
        name="envoy-proxy",
        api_version="gateway.envoyproxy.io/v1alpha1",
        kind="EnvoyProxy",
        metadata={"name": ENVOY_PROXY_NAME, "namespace": GATEWAY_NAMESPACE},
        spec={
            "provider": {
                "type": "Kubernetes",
                "kubernetes": {
                    "envoyDeployment": {"replicas": config.proxy_replicas},
                    "envoyService": {
                        "name": GATEWAY_SERVICE,
                        "type": "LoadBalancer",
                        # Handled by the AWS Load Balancer Controller, never the in-tree one.
                        "loadBalancerClass": "service.k8s.aws/nlb",
                        "loadBalancerSourceRanges": list(config.source_ranges),
                        # The NLB targets pod IPs: no node ports to allocate or open.
                        "allocateLoadBalancerNodePorts": False,
                        "externalTrafficPolicy": "Cluster",
                        "annotations": load_balancer_annotations(config, certificate_arn),
                    },
                },
            }
        },
    )
    gateway_class = GatewayObject(
        name="gateway-class",
        api_version="gateway.networking.k8s.io/v1",
        kind="GatewayClass",
        metadata={"name": GATEWAY_CLASS},
        spec={
            "controllerName": ENVOY_CONTROLLER,
            "parametersRef": {
                "group": "gateway.envoyproxy.io",
                "kind": "EnvoyProxy",
                "name": ENVOY_PROXY_NAME,
                "namespace": GATEWAY_NAMESPACE,
            },
        },
    )
    gateway = GatewayObject(
        name="gateway",
        api_version="gateway.networking.k8s.io/v1",
        kind="Gateway",
        metadata={"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE},
        spec={
            "gatewayClassName": GATEWAY_CLASS,
            "listeners": [
                {
                    # TLS ends on the NLB (ACM); the NLB forwards HTTP to this listener.
                    "name": GATEWAY_LISTENER,
                    "protocol": "HTTP",
                    "port": GATEWAY_PORT,
                    "hostname": config.host,
                    # Routes from any namespace may attach; the hostname bounds what they serve.
                    "allowedRoutes": {"namespaces": {"from": "All"}},
                }
            ],
        },
    )
    return [proxy, gateway_class, gateway]


def load_balancer_controller_policy(
    account: Account, vpc_id: pulumi.Input[str], certificate_arn: pulumi.Input[str]
) -> pulumi.Output[str]:
    """The controller's published IAM policy (docs/install/iam_policy.json of
    kubernetes-sigs/aws-load-balancer-controller v2.14), narrowed where this platform allows:
    - dropped: WAF, WAFv2, Shield, Cognito and IAM server certificates, which serve ALB
      features this edge does not use (the chart's enableWaf/enableWafv2/enableShield are off);
    - by ARN instead of `*`: security-group rule changes and creation (this account and
      region, the stack's VPC), listener and rule changes (this account's load balancers),
      the service-linked role, and the one ACM certificate;
    - on `*` as published: reads, and writes conditioned on the `elbv2.k8s.aws/cluster` tag
      (ARNs AWS assigns at creation; infra/iam.py explains the exception)."""
    prefix = f"arn:{account.partition}"
    here = f"{account.region}:{account.account_id}"
    elb = f"{prefix}:elasticloadbalancing:{here}"
    security_groups = f"{prefix}:ec2:{here}:security-group/*"
    tagged_request = {"Null": {f"aws:RequestTag/{CLUSTER_TAG}": "false"}}
    tagged_resource = {"Null": {f"aws:ResourceTag/{CLUSTER_TAG}": "false"}}
    vpc = pulumi.Output.from_input(vpc_id).apply(lambda vpc: f"{prefix}:ec2:{here}:vpc/{vpc}")
    return policy_document(
        [
            allow(
                "CreateElbServiceLinkedRole",
                ["iam:CreateServiceLinkedRole"],
                [
                    f"{prefix}:iam::{account.account_id}:role/aws-service-role/"
                    "elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing"
                ],
                {"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
            ),
            allow("Describe", sorted(LOAD_BALANCER_READ_ACTIONS), ["*"]),
            allow("DescribeCertificate", ["acm:DescribeCertificate"], [certificate_arn]),
            allow(
                "ManageSecurityGroupRules",
                ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
                [security_groups],
            ),
            allow("CreateSecurityGroup", ["ec2:CreateSecurityGroup"], [security_groups, vpc]),
            allow(
                "TagNewSecurityGroup",
                ["ec2:CreateTags"],
                [security_groups],
                {
                    "StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"},
                    **tagged_request,
                },
            ),
            allow(
                "RetagOwnSecurityGroups",
                ["ec2:CreateTags", "ec2:DeleteTags"],
                [security_groups],
                {
                    "Null": {
                        f"aws:RequestTag/{CLUSTER_TAG}": "true",
                        f"aws:ResourceTag/{CLUSTER_TAG}": "false",
                    }
                },
            ),
            allow(
                "ChangeOwnSecurityGroups",
                [
                    "ec2:AuthorizeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupIngress",
                    "ec2:DeleteSecurityGroup",
                ],
                ["*"],
                tagged_resource,
            ),
            allow(
                "CreateTaggedLoadBalancers",
                [
                    "elasticloadbalancing:CreateLoadBalancer",
                    "elasticloadbalancing:CreateTargetGroup",
                ],
                ["*"],
                tagged_request,
            ),
            allow(
                "ManageListenersAndRules",
                [
                    "elasticloadbalancing:CreateListener",
                    "elasticloadbalancing:DeleteListener",
                    "elasticloadbalancing:CreateRule",
                    "elasticloadbalancing:DeleteRule",
                    "elasticloadbalancing:ModifyListener",
                    "elasticloadbalancing:ModifyListenerAttributes",
                    "elasticloadbalancing:AddListenerCertificates",
                    "elasticloadbalancing:RemoveListenerCertificates",
                    "elasticloadbalancing:ModifyRule",
                ],
                [
                    f"{elb}:loadbalancer/net/*/*",
                    f"{elb}:listener/net/*/*/*",
                    f"{elb}:listener-rule/net/*/*/*/*",
                ],
            ),
            allow(
                "RetagOwnLoadBalancers",
                ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                [f"{elb}:targetgroup/*/*", f"{elb}:loadbalancer/net/*/*"],
                {
                    "Null": {
                        f"aws:RequestTag/{CLUSTER_TAG}": "true",
                        f"aws:ResourceTag/{CLUSTER_TAG}": "false",
                    }
                },
            ),
            allow(
                "TagOnCreate",
                ["elasticloadbalancing:AddTags"],
                [f"{elb}:targetgroup/*/*", f"{elb}:loadbalancer/net/*/*"],
                {
                    "StringEquals": {
                        "elasticloadbalancing:CreateAction": [
                            "CreateTargetGroup",
                            "CreateLoadBalancer",
                        ]
                    },
                    **tagged_request,
                },
            ),
            allow(
                "ChangeOwnLoadBalancers",
                [
                    "elasticloadbalancing:ModifyLoadBalancerAttributes",
                    "elasticloadbalancing:SetIpAddressType",
                    "elasticloadbalancing:SetSecurityGroups",
                    "elasticloadbalancing:SetSubnets",
                    "elasticloadbalancing:DeleteLoadBalancer",
                    "elasticloadbalancing:ModifyTargetGroup",
                    "elasticloadbalancing:ModifyTargetGroupAttributes",
                    "elasticloadbalancing:DeleteTargetGroup",
                ],
                ["*"],
                tagged_resource,
            ),
            allow(
                "RegisterTargets",
                ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
                [f"{elb}:targetgroup/*/*"],
            ),
        ]
    )


def hosted_zone_id(config: EdgeConfig, stack_file: str, provider: aws.Provider) -> str:
    """The public zone the certificate is validated in; a zone that is not there stops the
    program with the key and the stack file named."""
    try:
        zone = aws.route53.get_zone(
            name=config.hosted_zone,
            private_zone=False,
            opts=pulumi.InvokeOptions(provider=provider),
        )
    except Exception as error:  # the provider raises a bare exception for "not found"
        raise StackConfigError(
            f"{stack_file}: agent-platform:edge.hostedZone {config.hosted_zone!r}: no public "
            f"Route 53 zone of that name in this account ({error})"
        ) from error
    return str(zone.zone_id)


@dataclass(frozen=True)
class EdgeArgs:
    config: EdgeConfig
    zone_id: str
    vpc_id: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    account: Account
    tags: Tags


class Edge(pulumi.ComponentResource):
    """The certificate (issued: validated through DNS) and the controller's role."""

    certificate_arn: pulumi.Output[str]
    load_balancer_controller_role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-platform:edge:Edge", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config, tags, account = args.config, args.tags, args.account

        certificate = aws.acm.Certificate(
            f"{name}-edge",
            domain_name=config.host,
            validation_method="DNS",
            tags=tags.named(f"{name}-edge"),
            opts=child,
        )
        option = certificate.domain_validation_options.apply(lambda options: options[0])
        record = aws.route53.Record(
            f"{name}-edge-validation",
            zone_id=args.zone_id,
            name=option.apply(lambda o: o.resource_record_name or ""),
            type=option.apply(lambda o: o.resource_record_type or "CNAME"),
            records=[option.apply(lambda o: o.resource_record_value or "")],
            ttl=300,
            # ACM reuses the same record for a re-issued certificate of the same name.
            allow_overwrite=True,
            opts=child,
        )
        validation = aws.acm.CertificateValidation(
            f"{name}-edge",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn],
            opts=child,
        )

        role = aws.iam.Role(
            f"{name}-load-balancer-controller",
            description=f"IRSA role of the AWS Load Balancer Controller in {name}",
            assume_role_policy=irsa_trust_policy(
                args.oidc_provider_arn,
                args.oidc_issuer,
                LOAD_BALANCER_CONTROLLER_NAMESPACE,
                LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT,
            ),
            tags=tags.named(f"{name}-load-balancer-controller"),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-load-balancer-controller",
            role=role.id,
            policy=load_balancer_controller_policy(account, args.vpc_id, certificate.arn),
            opts=child,
        )

        # The ARN as the validation reports it: whatever uses it waits for an issued certificate.
        self.certificate_arn = validation.certificate_arn
        self.load_balancer_controller_role_arn = role.arn
        # The controller must hold its permissions, and the certificate be issued, before the
        # NLB is requested.
        self.ready: list[pulumi.Resource] = [policy, validation]
        self.register_outputs(
            {
                "certificateArn": self.certificate_arn,
                "loadBalancerControllerRoleArn": self.load_balancer_controller_role_arn,
            }
        )
