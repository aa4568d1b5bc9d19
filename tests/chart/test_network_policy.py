"""NetworkPolicies: who may reach the pods, and where each pod may connect."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.support import FULLNAME, RELEASE, Rendered, RenderError, pod_labels, render_env

pytestmark = pytest.mark.helm

DNS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
}


def _namespaces(rule: dict[str, Any]) -> list[str]:
    return [
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in rule["from"]
        if "namespaceSelector" in peer
    ]


def _egress(policy: dict[str, Any]) -> dict[int, list[str]]:
    """port -> CIDRs of the ipBlock rules."""
    result: dict[int, list[str]] = {}
    for rule in policy["spec"]["egress"]:
        cidrs = [peer["ipBlock"]["cidr"] for peer in rule["to"] if "ipBlock" in peer]
        if cidrs:
            (port,) = rule["ports"]
            result[port["port"]] = cidrs
    return result


def test_service_ingress_only_from_ingress_controller_prometheus_and_load_tester(
    canary: Rendered,
) -> None:
    policy = canary.one("NetworkPolicy")
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["podSelector"] == {
        "matchLabels": {
            "app.kubernetes.io/instance": RELEASE,
            "app.kubernetes.io/component": "server",
        }
    }
    sources = [(_namespaces(rule), rule["ports"]) for rule in spec["ingress"]]
    # By number, not by name (the EKS network policy agent has had named-port bugs).
    http = [{"port": 8000, "protocol": "TCP"}]
    assert (["ingress-nginx"], http) in sources
    assert (["monitoring"], [{"port": 9464, "protocol": "TCP"}]) in sources
    assert (["flagger-system"], http) in sources
    # The helm test pod, by its own labels.
    test_rule = spec["ingress"][-1]
    assert (
        test_rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"
    )
    assert len(spec["ingress"]) == 4


def test_every_network_policy_port_is_a_number(canary: Rendered) -> None:
    for policy in canary.all("NetworkPolicy"):
        for direction in ("ingress", "egress"):
            for rule in policy["spec"].get(direction) or []:
                for port in rule.get("ports", []):
                    assert isinstance(port["port"], int), (policy["metadata"]["name"], port)


def test_without_the_canary_the_load_tester_gets_no_access(autoscaled: Rendered) -> None:
    namespaces = [
        ns
        for rule in autoscaled.one("NetworkPolicy")["spec"]["ingress"]
        for ns in _namespaces(rule)
    ]
    assert namespaces == ["envoy-gateway-system", "monitoring"]


def test_with_the_http_route_only_the_gateways_proxies_get_in(autoscaled: Rendered) -> None:
    (gateway, prometheus, *_) = autoscaled.one("NetworkPolicy")["spec"]["ingress"]
    assert gateway == {
        "from": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "envoy-gateway-system"}
                },
                # Both selectors in one peer: those pods in that namespace, nothing else there.
                "podSelector": {
                    "matchLabels": {
                        "app.kubernetes.io/name": "envoy",
                        "gateway.envoyproxy.io/owning-gateway-name": "public",
                        "gateway.envoyproxy.io/owning-gateway-namespace": "envoy-gateway-system",
                    }
                },
            }
        ],
        "ports": [{"port": 8000, "protocol": "TCP"}],
    }
    assert _namespaces(prometheus) == ["monitoring"]
    # The ingress controller's namespace only with the Ingress alternative.
    assert "ingress-nginx" not in str(autoscaled.one("NetworkPolicy")["spec"]["ingress"])


def test_service_egress_only_to_dns_postgres_redis_and_the_model(canary: Rendered) -> None:
    policy = canary.one("NetworkPolicy")
    assert policy["spec"]["egress"][0] == DNS
    subnets = ["10.30.0.0/18", "10.30.64.0/18", "10.30.128.0/18"]
    assert _egress(policy) == {5432: subnets, 6379: subnets, 443: ["0.0.0.0/0"]}


def test_an_offline_model_opens_no_egress_to_a_provider(autoscaled: Rendered) -> None:
    assert 443 not in _egress(autoscaled.one("NetworkPolicy"))
    assert all(rule.get("to") for rule in autoscaled.one("NetworkPolicy")["spec"]["egress"])


def test_jobs_reach_postgres_and_only_the_backup_reaches_s3(canary: Rendered) -> None:
    subnets = ["10.30.0.0/18", "10.30.64.0/18", "10.30.128.0/18"]
    s3 = ["3.5.64.0/21", "52.218.0.0/17", "10.30.0.0/16"]
    for component, expected in [
        ("migration", {5432: subnets}),
        ("retention", {5432: subnets}),
        ("backup", {5432: subnets, 443: s3}),
    ]:
        policy = canary.one("NetworkPolicy", f"{FULLNAME}-{component}")
        assert policy["spec"]["ingress"] == []
        assert policy["spec"]["egress"][0] == DNS
        assert _egress(policy) == expected, component


def test_the_test_pod_may_only_reach_the_service_pods(canary: Rendered) -> None:
    policy = canary.one("NetworkPolicy", f"{FULLNAME}-test")
    assert policy["spec"]["ingress"] == []
    assert policy["spec"]["egress"][1] == {
        "to": [
            {
                "podSelector": {
                    "matchLabels": {
                        "app.kubernetes.io/instance": RELEASE,
                        "app.kubernetes.io/component": "server",
                    }
                }
            }
        ],
        "ports": [{"port": 8000, "protocol": "TCP"}],
    }


def test_every_pod_of_the_chart_is_selected_by_a_policy(each_env: tuple[str, Rendered]) -> None:
    _, rendered = each_env
    selectors = [p["spec"]["podSelector"]["matchLabels"] for p in rendered.all("NetworkPolicy")]
    for owner in rendered.manifests:
        if owner["kind"] in {"Deployment", "Job", "CronJob", "Pod"}:
            labels = pod_labels(owner)
            matching = [s for s in selectors if labels.items() >= s.items()]
            assert len(matching) == 1, f"{owner['kind']}/{owner['metadata']['name']}: {matching}"


def test_the_migration_policy_exists_before_the_hook_runs(canary: Rendered) -> None:
    annotations = canary.one("NetworkPolicy", f"{FULLNAME}-migration")["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(annotations["helm.sh/hook-weight"]) < 0


def test_a_database_without_egress_cidrs_is_refused() -> None:
    with pytest.raises(RenderError, match=r"requires networkPolicy.egress.postgres.cidrs"):
        render_env("existing-secret", {"networkPolicy": {"egress": {"postgres": {"cidrs": []}}}})


def test_backup_without_s3_cidrs_is_refused() -> None:
    with pytest.raises(RenderError, match=r"requires networkPolicy.egress.s3.cidrs"):
        render_env("existing-secret", {"networkPolicy": {"egress": {"s3": {"cidrs": []}}}})


def test_policies_can_be_turned_off() -> None:
    assert not render_env("existing-secret", {"networkPolicy": {"enabled": False}}).all(
        "NetworkPolicy"
    )
