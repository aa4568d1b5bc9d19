"""H4, the edge: the AWS Load Balancer Controller (pinned chart, IRSA role with its narrowed
published policy), the Gateway API CRDs and Envoy Gateway, a GatewayClass and Gateway whose
proxies sit behind an internet-facing NLB restricted to the stack's source ranges, TLS from an
ACM certificate validated in the stack's hosted zone, and the order `pulumi up` creates them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import StackConfig
from infra.iam import LOAD_BALANCER_READ_ACTIONS, check_least_privilege
from tests.infra.support import by_name, document, offline_run, stack_config
from tools.plan.offline import (
    RELEASE_TYPE,
    OfflineRun,
    RecordedResource,
    run_offline,
    stack_config_values,
)

EDGE_STACKS = ("staging", "prod")
LBC_SERVICE_ACCOUNT = "system:serviceaccount:kube-system:aws-load-balancer-controller"


def _addon(run: OfflineRun, chart: str) -> RecordedResource:
    (found,) = [r for r in run.of_type(RELEASE_TYPE) if r.inputs["chart"] == chart]
    return found


def _object(run: OfflineRun, kind: str) -> RecordedResource:
    (found,) = [r for r in run.resources if r.type.endswith(f":{kind}")]
    return found


def _service_release(run: OfflineRun) -> RecordedResource:
    (found,) = [
        r for r in run.of_type(RELEASE_TYPE) if r.inputs["chart"].endswith("/langgraph-agent")
    ]
    return found


@pytest.fixture(params=EDGE_STACKS)
def edge_stack(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def edge_run(edge_stack: str) -> OfflineRun:
    return offline_run(edge_stack)


@pytest.fixture
def edge_config(edge_stack: str) -> StackConfig:
    return stack_config(edge_stack)


def test_the_certificate_is_validated_through_the_hosted_zone(
    edge_run: OfflineRun, edge_config: StackConfig
) -> None:
    assert edge_config.edge is not None
    certificate = edge_run.one("aws:acm/certificate:Certificate")
    assert certificate.inputs["domainName"] == edge_config.edge.host
    assert certificate.inputs["validationMethod"] == "DNS"
    (option,) = certificate.outputs["domainValidationOptions"]
    record = edge_run.one("aws:route53/record:Record")
    assert record.inputs["name"] == option["resourceRecordName"]
    assert record.inputs["type"] == "CNAME"
    assert record.inputs["records"] == [option["resourceRecordValue"]]
    # The zone is the public one named by edge.hostedZone, looked up in the account.
    assert record.inputs["zoneId"].startswith("Z")
    validation = edge_run.one("aws:acm/certificateValidation:CertificateValidation")
    assert validation.inputs["certificateArn"] == certificate.outputs["arn"]
    assert validation.inputs["validationRecordFqdns"] == [record.outputs["fqdn"]]
    assert edge_run.outputs["edgeCertificateArn"] == certificate.outputs["arn"]


def test_the_load_balancer_controller_role_is_its_service_accounts_only(
    edge_run: OfflineRun, edge_stack: str
) -> None:
    role = by_name(edge_run, "aws:iam/role:Role")[f"agent-{edge_stack}-load-balancer-controller"]
    (trust,) = document(role, "assumeRolePolicy")["Statement"]
    (condition,) = trust["Condition"].values()
    assert LBC_SERVICE_ACCOUNT in condition.values()
    policy = by_name(edge_run, "aws:iam/rolePolicy:RolePolicy")[
        f"agent-{edge_stack}-load-balancer-controller"
    ]
    statements = {s["Sid"]: s for s in document(policy, "policy")["Statement"]}
    check_least_privilege(document(policy, "policy"))
    # Writes on `*` only where the controller's own tag scopes them.
    for statement in statements.values():
        writes = set(statement["Action"]) - LOAD_BALANCER_READ_ACTIONS
        if statement["Resource"] == ["*"] and writes:
            (null,) = [statement["Condition"]["Null"]]
            assert "false" in null.values(), statement["Sid"]
            assert all("elbv2.k8s.aws/cluster" in key for key in null), statement["Sid"]
    # What the ALB-only features would need is not granted.
    actions = {a for s in statements.values() for a in s["Action"]}
    assert not {a for a in actions if a.split(":")[0] in {"waf-regional", "wafv2", "shield"}}
    # Security-group rules are changed only in this account and region.
    rules = statements["ManageSecurityGroupRules"]["Resource"]
    assert rules == [f"arn:aws:ec2:eu-west-1:{role.outputs['arn'].split(':')[4]}:security-group/*"]
    # The one certificate, not every certificate of the account.
    certificate = edge_run.one("aws:acm/certificate:Certificate")
    assert statements["DescribeCertificate"]["Resource"] == [certificate.outputs["arn"]]


def test_the_controller_chart_is_pinned_and_wired(edge_run: OfflineRun, edge_stack: str) -> None:
    controller = _addon(edge_run, "aws-load-balancer-controller")
    assert controller.inputs["repositoryOpts"] == {"repo": "https://aws.github.io/eks-charts"}
    assert controller.inputs["version"] == "1.14.0"
    values = controller.inputs["values"]
    role = by_name(edge_run, "aws:iam/role:Role")[f"agent-{edge_stack}-load-balancer-controller"]
    assert values["serviceAccount"]["annotations"] == {
        "eks.amazonaws.com/role-arn": role.outputs["arn"]
    }
    assert values["serviceAccount"]["name"] == "aws-load-balancer-controller"
    # Pods cannot read IMDS (hop limit 1): region and VPC are given, not discovered.
    assert values["region"] == "eu-west-1"
    assert values["vpcId"] == edge_run.one("aws:ec2/vpc:Vpc").id
    assert values["clusterName"] == f"agent-{edge_stack}"
    assert (values["enableWaf"], values["enableWafv2"], values["enableShield"]) == (
        False,
        False,
        False,
    )


def test_gateway_api_crds_come_from_their_own_release(edge_run: OfflineRun) -> None:
    crds = _addon(edge_run, "oci://docker.io/envoyproxy/gateway-crds-helm")
    gateway = _addon(edge_run, "oci://docker.io/envoyproxy/gateway-helm")
    assert crds.inputs["values"]["crds"]["gatewayAPI"] == {"enabled": True, "channel": "standard"}
    assert crds.inputs["version"] == gateway.inputs["version"]
    # The controller's chart leaves the CRDs to the CRD release (which upgrades them).
    assert gateway.inputs["skipCrds"] is True
    assert crds.urn in gateway.depends_on


def test_the_gateway_is_an_internet_facing_nlb_restricted_to_the_source_ranges(
    edge_run: OfflineRun, edge_config: StackConfig
) -> None:
    assert edge_config.edge is not None
    proxy = _object(edge_run, "EnvoyProxy").inputs
    service = proxy["spec"]["provider"]["kubernetes"]["envoyService"]
    assert service["type"] == "LoadBalancer"
    # The AWS Load Balancer Controller's class: the in-tree controller leaves it alone.
    assert service["loadBalancerClass"] == "service.k8s.aws/nlb"
    assert service["loadBalancerSourceRanges"] == edge_config.edge.source_ranges
    annotations = service["annotations"]
    prefix = "service.beta.kubernetes.io/aws-load-balancer-"
    assert annotations[f"{prefix}scheme"] == "internet-facing"
    assert annotations[f"{prefix}nlb-target-type"] == "ip"
    certificate = edge_run.one("aws:acm/certificate:Certificate")
    assert annotations[f"{prefix}ssl-cert"] == certificate.outputs["arn"]
    assert annotations[f"{prefix}ssl-ports"] == "443"
    assert annotations[f"{prefix}ssl-negotiation-policy"].startswith("ELBSecurityPolicy-TLS13")

    gateway_class = _object(edge_run, "GatewayClass").inputs
    assert (
        gateway_class["spec"]["controllerName"] == "gateway.envoyproxy.io/gatewayclass-controller"
    )
    assert gateway_class["spec"]["parametersRef"]["name"] == proxy["metadata"]["name"]
    gateway = _object(edge_run, "Gateway").inputs
    assert gateway["spec"]["gatewayClassName"] == gateway_class["metadata"]["name"]
    (listener,) = gateway["spec"]["listeners"]
    assert (listener["port"], listener["hostname"]) == (443, edge_config.edge.host)


def test_the_route_attaches_to_the_gateway_the_program_creates(edge_run: OfflineRun) -> None:
    gateway = _object(edge_run, "Gateway").inputs
    (listener,) = gateway["spec"]["listeners"]
    (parent,) = edge_run.service_release_values()["httpRoute"]["parentRefs"]
    assert parent == {
        "name": gateway["metadata"]["name"],
        "namespace": gateway["metadata"]["namespace"],
        "sectionName": listener["name"],
    }


def test_edge_order(edge_run: OfflineRun, edge_stack: str) -> None:
    """The NLB is requested only once the controller holds its permissions and the
    certificate is issued; the Gateway's CRDs and controller come first; the service's route
    attaches to a Gateway that exists."""
    name = f"agent-{edge_stack}"
    policy = by_name(edge_run, "aws:iam/rolePolicy:RolePolicy")[f"{name}-load-balancer-controller"]
    validation = edge_run.one("aws:acm/certificateValidation:CertificateValidation")
    controller = _addon(edge_run, "aws-load-balancer-controller")
    crds = _addon(edge_run, "oci://docker.io/envoyproxy/gateway-crds-helm")
    envoy = _addon(edge_run, "oci://docker.io/envoyproxy/gateway-helm")
    for kind in ("EnvoyProxy", "GatewayClass", "Gateway"):
        item = _object(edge_run, kind)
        missing = [
            r.name
            for r in (policy, validation, controller, crds, envoy)
            if r.urn not in item.depends_on
        ]
        assert not missing, f"{kind} is not ordered after {missing}"
        assert item.urn in _service_release(edge_run).depends_on
    record = edge_run.one("aws:route53/record:Record")
    assert record.urn in validation.depends_on


def test_dev_has_no_edge() -> None:
    run = offline_run("dev")
    assert not run.of_type("aws:acm/certificate:Certificate")
    assert not [r for r in run.resources if r.type.endswith((":Gateway", ":EnvoyProxy"))]
    charts = {r.inputs["chart"] for r in run.of_type(RELEASE_TYPE)}
    assert "aws-load-balancer-controller" not in charts
    assert run.service_release_values()["httpRoute"] == {"enabled": False}


def test_a_hosted_zone_that_is_not_there_names_the_key_and_the_stack() -> None:
    values, secret_keys = stack_config_values("staging")
    edge: dict[str, Any] = json.loads(values["agent-platform:edge"])
    edge.update(host="agent.staging.invalid", hostedZone="staging.invalid")
    values["agent-platform:edge"] = json.dumps(edge)
    with pytest.raises(
        Exception, match=r"Pulumi\.staging\.yaml: agent-platform:edge\.hostedZone"
    ) as caught:
        run_offline("staging", config=values, secret_keys=secret_keys)
    assert "no public Route 53 zone of that name" in str(caught.value)
