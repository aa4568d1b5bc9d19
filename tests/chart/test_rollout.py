"""HPA, PodDisruptionBudget, Service, HTTPRoute or Ingress, and the Flagger Canary."""

from __future__ import annotations

import re

import pytest

from tests.chart.support import (
    FULLNAME,
    NAMESPACE,
    Rendered,
    RenderError,
    pod_spec,
    render_env,
)

pytestmark = pytest.mark.helm


def test_hpa_scales_on_cpu_70_and_memory_80_with_a_stabilisation_window(canary: Rendered) -> None:
    hpa = canary.one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": FULLNAME,
    }
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 10)
    targets = {m["resource"]["name"]: m["resource"]["target"] for m in spec["metrics"]}
    assert targets == {
        "cpu": {"type": "Utilization", "averageUtilization": 70},
        "memory": {"type": "Utilization", "averageUtilization": 80},
    }
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300


def test_the_hpa_owns_the_replica_count(canary: Rendered, existing_secret: Rendered) -> None:
    assert "replicas" not in canary.one("Deployment")["spec"]
    assert not existing_secret.all("HorizontalPodAutoscaler")


def test_prod_runs_three_or_more_replicas(canary: Rendered) -> None:
    assert canary.one("HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 3


def test_pdb_selects_the_served_pods(autoscaled: Rendered, canary: Rendered) -> None:
    staging_pdb = autoscaled.one("PodDisruptionBudget")
    assert staging_pdb["apiVersion"] == "policy/v1"
    assert staging_pdb["spec"] == {
        "maxUnavailable": 1,
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
        "selector": {"matchLabels": {"app.kubernetes.io/name": "langgraph-agent"}},
    }
    # With the canary on, Flagger serves traffic from <name>-primary pods.
    assert canary.one("PodDisruptionBudget")["spec"] == {
        "maxUnavailable": 1,
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
        "selector": {"matchLabels": {"app.kubernetes.io/name": "langgraph-agent-primary"}},
    }


def test_pdb_takes_max_unavailable_or_a_percentage() -> None:
    pdb = render_env(
        "autoscaled", {"podDisruptionBudget": {"minAvailable": None, "maxUnavailable": "25%"}}
    ).one("PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == "25%"
    assert "minAvailable" not in pdb["spec"]


def test_pdb_with_both_bounds_is_refused() -> None:
    with pytest.raises(RenderError, match="either minAvailable or maxUnavailable, not both"):
        render_env("autoscaled", {"podDisruptionBudget": {"minAvailable": 1}})


def test_service_and_http_route_without_canary(autoscaled: Rendered) -> None:
    service = autoscaled.one("Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "langgraph-agent"}
    # The HTTPRoute is the default edge; no Ingress unless asked for.
    assert not autoscaled.all("Ingress")
    route = autoscaled.one("HTTPRoute")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"] == {
        "parentRefs": [
            {
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
                "name": "public",
                "namespace": "envoy-gateway-system",
            }
        ],
        "hostnames": ["agent.staging.example.com"],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                # The chart's Service, by port number (a backendRef has no port name).
                "backendRefs": [{"name": FULLNAME, "port": service["spec"]["ports"][0]["port"]}],
            }
        ],
    }


def test_http_route_sections_and_paths() -> None:
    route = render_env(
        "autoscaled",
        {
            "httpRoute": {
                "parentRefs": [{"name": "edge", "namespace": "gw", "sectionName": "https"}],
                "paths": [
                    {"type": "PathPrefix", "value": "/threads"},
                    {"type": "Exact", "value": "/ok"},
                ],
            }
        },
    ).one("HTTPRoute")
    (parent,) = route["spec"]["parentRefs"]
    assert (parent["name"], parent["namespace"], parent["sectionName"]) == ("edge", "gw", "https")
    assert route["spec"]["rules"][0]["matches"] == [
        {"path": {"type": "PathPrefix", "value": "/threads"}},
        {"path": {"type": "Exact", "value": "/ok"}},
    ]


@pytest.mark.parametrize(
    "route",
    [
        {"parentRefs": []},
        {"hostnames": ["https://agent.example.com"]},
        {"paths": [{"type": "RegularExpression", "value": "/.*"}]},
        {"paths": [{"type": "PathPrefix", "value": "threads"}]},
        {"parentRefs": [{"namespace": "gw"}]},
    ],
)
def test_the_schema_refuses_a_broken_route(route: dict[str, object]) -> None:
    with pytest.raises(RenderError, match="httpRoute"):
        render_env("autoscaled", {"httpRoute": route})


def test_the_ingress_stays_an_opt_in_alternative(autoscaled: Rendered) -> None:
    rendered = render_env(
        "autoscaled",
        {
            "httpRoute": {"enabled": False},
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "hosts": [
                    {"host": "agent.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}
                ],
                "tls": [{"secretName": "agent-tls", "hosts": ["agent.example.com"]}],
            },
        },
    )
    assert not rendered.all("HTTPRoute")
    ingress = rendered.one("Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"secretName": "agent-tls", "hosts": ["agent.example.com"]}]
    (rule,) = ingress["spec"]["rules"]
    assert rule["http"]["paths"][0]["backend"] == {
        "service": {"name": FULLNAME, "port": {"name": "http"}}
    }


# The canary fixture with the default edge: the prod shape.
GATEWAY_CANARY = {
    "httpRoute": {"enabled": True, "hostnames": ["agent.example.com"]},
    "ingress": {"enabled": False},
    "canary": {"provider": "gatewayapi:v1"},
}


@pytest.fixture(scope="module")
def gateway_canary() -> Rendered:
    return render_env("canary", GATEWAY_CANARY)


def test_the_gatewayapi_canary_names_the_gateway_and_leaves_the_route_to_flagger(
    gateway_canary: Rendered,
) -> None:
    spec = gateway_canary.one("Canary")["spec"]
    assert spec["provider"] == "gatewayapi:v1"
    assert "ingressRef" not in spec
    # Field names of Flagger's Canary for Gateway API (docs.flagger.app/tutorials/
    # gatewayapi-progressive-delivery): the route Flagger generates attaches there.
    assert spec["service"]["gatewayRefs"] == [
        {"name": "public", "namespace": "envoy-gateway-system"}
    ]
    assert spec["service"]["hosts"] == ["agent.example.com"]
    assert spec["service"]["match"] == [{"uri": {"prefix": "/"}}]
    # Flagger creates and weights the <fullname> HTTPRoute: the chart rendering one of the same
    # name would reset the weights on every upgrade.
    assert not gateway_canary.all("HTTPRoute")
    assert not gateway_canary.all("Ingress")
    # Flagger's built-in gatewayapi queries need kubernetes_pod_name labels this Prometheus
    # does not set: only the service's own run MetricTemplates judge the canary.
    assert [m["name"] for m in spec["analysis"]["metrics"]] == [
        "run-error-ratio",
        "run-duration-p99",
    ]
    assert all("templateRef" in m for m in spec["analysis"]["metrics"])
    # The load (real runs) goes through the Gateway's proxies with the public host.
    webhooks = {w["name"]: w for w in spec["analysis"]["webhooks"]}
    cmd = webhooks["load-test"]["metadata"]["cmd"]
    assert cmd.startswith("hey -z 1m ")
    assert cmd.endswith(
        "-host agent.example.com http://envoy-public.envoy-gateway-system:443/runs/wait"
    )


def test_the_gatewayapi_canary_is_valid(gateway_canary: Rendered) -> None:
    from tools.kit.chart import validate

    assert validate(gateway_canary) == []


def test_the_provider_follows_the_edge_the_values_choose(
    canary: Rendered, gateway_canary: Rendered
) -> None:
    nginx = canary.one("Canary")["spec"]
    assert (nginx["provider"], nginx["ingressRef"]["kind"]) == ("nginx", "Ingress")
    assert "gatewayRefs" not in nginx["service"]
    assert gateway_canary.one("Canary")["spec"]["provider"] == "gatewayapi:v1"


def test_gatewayapi_canary_without_a_route_is_refused() -> None:
    with pytest.raises(
        RenderError, match=re.escape("canary.provider gatewayapi:v1 requires httpRoute.enabled")
    ):
        render_env("canary", {**GATEWAY_CANARY, "httpRoute": {"enabled": False}})
    with pytest.raises(RenderError, match=re.escape("requires at least one httpRoute.hostnames")):
        render_env("canary", {**GATEWAY_CANARY, "httpRoute": {"enabled": True}})


def test_canary_fields(canary: Rendered) -> None:
    resource = canary.one("Canary")
    assert resource["apiVersion"] == "flagger.app/v1beta1"
    spec = resource["spec"]
    assert spec["provider"] == "nginx"
    assert spec["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": FULLNAME}
    assert spec["ingressRef"] == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "name": FULLNAME,
    }
    assert spec["autoscalerRef"] == {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "name": FULLNAME,
    }
    assert spec["service"]["port"] == 80
    assert spec["service"]["targetPort"] == "http"
    analysis = spec["analysis"]
    assert (analysis["interval"], analysis["threshold"]) == ("1m", 5)
    assert (analysis["maxWeight"], analysis["stepWeight"]) == (50, 10)
    metrics = {m["name"]: m["thresholdRange"] for m in analysis["metrics"]}
    # No mean-latency gate (Flagger's nginx request-duration): the run checks judge instead.
    assert metrics == {
        "request-success-rate": {"min": 99},
        "run-error-ratio": {"max": 1},
        "run-duration-p99": {"max": 30},
    }
    refs = {m["name"]: m.get("templateRef") for m in analysis["metrics"]}
    assert refs["run-error-ratio"] == {"name": f"{FULLNAME}-run-error-ratio"}
    assert refs["run-duration-p99"] == {"name": f"{FULLNAME}-run-duration-p99"}
    assert spec["revertOnDeletion"] is True


RUN_BODY = (
    '{"assistant_id":"main_agent","input":{"messages":[{"content":"canary check","role":"user"}]}}'
)


def test_canary_webhooks_make_a_real_run_and_load_runs_through_the_ingress(
    canary: Rendered,
) -> None:
    webhooks = {w["name"]: w for w in canary.one("Canary")["spec"]["analysis"]["webhooks"]}
    smoke = webhooks["smoke-run"]
    assert smoke["type"] == "pre-rollout"
    # As Flagger writes the Canary back (else Helm's server-side apply conflicts with it).
    assert all(w["muteAlert"] is False for w in webhooks.values())
    assert smoke["url"] == "http://flagger-loadtester.flagger-system/"
    cmd = smoke["metadata"]["cmd"]
    # Authenticated (the key from the load tester's environment, expanded by sh: double
    # quotes), a real run on the canary Service, judged by its body.
    assert '-H "X-API-Key: ${AGENT_SMOKE_API_KEY}"' in cmd
    assert f"-d '{RUN_BODY}' http://{FULLNAME}-canary.{NAMESPACE}:80/runs/wait" in cmd
    assert "grep -q '\"messages\"'" in cmd
    assert "! printf '%s' \"$out\" | grep -q '__error__'" in cmd
    load = webhooks["load-test"]
    assert load["type"] == "rollout"
    assert load["metadata"]["cmd"] == (
        "hey -z 1m -q 1 -c 2 -m POST -T application/json "
        '-H "X-API-Key: ${AGENT_SMOKE_API_KEY}" '
        f"-d '{RUN_BODY}' -host agent.example.com "
        "https://ingress-nginx-controller.ingress-nginx/runs/wait"
    )
    assert "/health" not in load["metadata"]["cmd"]


def test_a_mesh_provider_loads_the_apex_service_and_has_no_ingress_ref() -> None:
    canary = render_env("canary", {"canary": {"provider": "linkerd"}}).one("Canary")
    assert "ingressRef" not in canary["spec"]
    webhooks = {w["name"]: w for w in canary["spec"]["analysis"]["webhooks"]}
    assert webhooks["load-test"]["metadata"]["cmd"].endswith(
        f"http://{FULLNAME}.{NAMESPACE}:80/runs/wait"
    )


def _flagger_generated(rendered: Rendered) -> set[tuple[str, str]]:
    """What Flagger creates for the chart's Canary (docs.flagger.app, "How it works" and the
    nginx tutorial): the primary Deployment and HPA, the apex, -primary and -canary Services,
    the canary Ingress, and -primary copies of the ConfigMaps and Secrets the pods use."""
    spec = rendered.one("Canary")["spec"]
    service = spec["service"].get("name", spec["targetRef"]["name"])
    generated = {
        ("Deployment", f"{spec['targetRef']['name']}-primary"),
        ("HorizontalPodAutoscaler", f"{spec['autoscalerRef']['name']}-primary"),
        ("Service", f"{service}-primary"),
        ("Service", f"{service}-canary"),
    }
    if "ingressRef" in spec:
        generated.add(("Ingress", f"{spec['ingressRef']['name']}-canary"))
    if "gatewayRefs" in spec["service"]:
        # fluxcd/flagger pkg/router/gateway_api.go: the route named after the apex Service.
        generated.add(("HTTPRoute", service))
    pod = pod_spec(rendered.one("Deployment", spec["targetRef"]["name"]))
    for container in pod["containers"]:
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                generated.add(("ConfigMap", f"{source['configMapRef']['name']}-primary"))
    for volume in pod["volumes"]:
        if "secret" in volume:
            generated.add(("Secret", f"{volume['secret']['secretName']}-primary"))
    return generated


def test_the_canarys_references_resolve_to_the_charts_objects(canary: Rendered) -> None:
    spec = canary.one("Canary")["spec"]
    deployment = canary.one("Deployment", spec["targetRef"]["name"])
    hpa = canary.one("HorizontalPodAutoscaler", spec["autoscalerRef"]["name"])
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    ingress = canary.one("Ingress", spec["ingressRef"]["name"])
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    # The Ingress routes to the apex Service Flagger creates from the Canary.
    assert backends == {spec["service"].get("name", spec["targetRef"]["name"])}
    (container,) = pod_spec(deployment)["containers"]
    assert spec["service"]["targetPort"] in {p["name"] for p in container["ports"]}


def test_with_the_canary_the_chart_leaves_flaggers_objects_to_flagger(canary: Rendered) -> None:
    generated = _flagger_generated(canary)
    assert len(generated) == 7
    rendered = {(m["kind"], m["metadata"]["name"]) for m in canary.manifests}
    assert rendered & generated == set()


def test_with_the_canary_the_charts_service_is_flaggers_apex_spec(canary: Rendered) -> None:
    """Flagger adopts an existing apex Service by setting its ports and selector to its own
    (ClusterIP, the Canary's port/portName/targetPort over TCP, the -primary pods): the chart
    renders exactly that, so neither undoes the other (pkg/router/kubernetes_default.go)."""
    flagger = canary.one("Canary")["spec"]["service"]
    service = canary.one("Service")
    assert service["spec"] == {
        "type": "ClusterIP",
        "ports": [
            {
                "name": flagger["portName"],
                "port": flagger["port"],
                "targetPort": flagger["targetPort"],
                "protocol": "TCP",
            }
        ],
        "selector": {"app.kubernetes.io/name": "langgraph-agent-primary"},
    }
    # No metrics port: the PodMonitor scrapes the pods, never through a Service.
    assert all(port["name"] == "http" for port in service["spec"]["ports"])


def test_with_the_gatewayapi_canary_the_chart_leaves_the_route_to_flagger(
    gateway_canary: Rendered,
) -> None:
    generated = _flagger_generated(gateway_canary)
    assert ("HTTPRoute", FULLNAME) in generated
    rendered = {(m["kind"], m["metadata"]["name"]) for m in gateway_canary.manifests}
    assert rendered & generated == set()


def test_without_the_canary_the_chart_creates_the_service(autoscaled: Rendered) -> None:
    assert autoscaled.has("Service")
    assert not autoscaled.all("Canary")


def test_canary_without_autoscaling_is_refused() -> None:
    with pytest.raises(RenderError, match=re.escape("canary.enabled requires autoscaling.enabled")):
        render_env("canary", {"autoscaling": {"enabled": False}})


def test_nginx_canary_without_ingress_is_refused() -> None:
    with pytest.raises(
        RenderError, match=re.escape("canary.provider nginx requires ingress.enabled")
    ):
        render_env("canary", {"ingress": {"enabled": False}})


def test_nginx_canary_without_a_host_is_refused() -> None:
    with pytest.raises(RenderError, match=re.escape("at least one ingress.hosts entry")):
        render_env("canary", {"ingress": {"hosts": [], "tls": []}})


def test_min_above_max_replicas_is_refused() -> None:
    with pytest.raises(RenderError, match=r"minReplicas \(5\) is greater than.*maxReplicas \(4\)"):
        render_env("autoscaled", {"autoscaling": {"minReplicas": 5}})


def test_sqlite_with_more_than_one_pod_is_refused() -> None:
    with pytest.raises(RenderError, match="embedded SQLite database belongs to one pod"):
        render_env("autoscaled", {"config": {"databaseUrl": ""}, "backup": {"enabled": False}})
