"""The chart's values, built from the typed stack config and the cloud resources' outputs.

One pure function, so that the wiring (which endpoint lands in which key) is tested without
Pulumi, and `make plan` renders the chart with exactly what `pulumi up` would install.
Nothing secret appears here: credentials are referenced by Secrets Manager ARN and synced into
the pod by External Secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from agent_service.persistence import roles
from pydantic.alias_generators import to_camel

from infra.addons import PROMETHEUS_NAMESPACE, PROMETHEUS_RELEASE
from infra.cache import PASSWORD_PROPERTY as REDIS_PASSWORD_PROPERTY
from infra.cache import USERNAME_PROPERTY as REDIS_USERNAME_PROPERTY
from infra.config import StackConfig
from infra.database_logins import PASSWORD_PROPERTY, USERNAME_PROPERTY
from infra.edge import (
    GATEWAY_LISTENER,
    GATEWAY_NAME,
    GATEWAY_NAMESPACE,
    GATEWAY_PORT,
    GATEWAY_SERVICE,
)
from infra.identity import API_KEYS_PROPERTY, MODEL_API_KEY_PROPERTY

IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
# The namespaced SecretStore the release component creates for the chart's ExternalSecret.
SECRET_STORE_NAME = "aws-secrets-manager"  # noqa: S105 - a resource name
HTTPS_PORT = 443
# The chart's traffic router for the canary: Flagger weights the HTTPRoute on the edge's
# Gateway; Flagger is installed for the same provider.
CANARY_PROVIDER = "gatewayapi:v1"
# At most 5 minutes: a rotated credential must reach the pods while the previous one is valid.
SECRET_REFRESH_INTERVAL = "5m"  # noqa: S105 - a duration
# The chart's jobs with a database login of their own (infra.database_logins' workloads).
JOB_LOGINS = ("migration", "backup", "retention")
_JOB_WORKLOAD = {"migration": "migrator", "backup": "backup", "retention": "retention"}


@dataclass(frozen=True)
class ReleaseWiring:
    """The resolved outputs of the other components that the release needs."""

    region: str
    repository_url: str
    database_address: str
    database_port: int
    database_name: str
    # The login secret of each workload (migrator, app, backup, retention); never the master's.
    database_login_secret_arns: dict[str, str]
    redis_address: str
    redis_port: int
    redis_secret_arn: str
    service_secret_arn: str
    service_role_arn: str
    backup_role_arn: str
    backup_bucket: str
    backup_prefix: str
    # The bucket's KMS key: backups are encrypted with it explicitly (SSE-KMS), not SSE-S3.
    backup_key_arn: str
    # Where the database and cache live: the private subnets.
    private_subnet_cidrs: tuple[str, ...]
    # S3's published ranges in the region (its managed prefix list) and the VPC's CIDR,
    # where the interface endpoints (STS, Secrets Manager) answer.
    s3_cidrs: tuple[str, ...]
    vpc_cidr: str


def database_url(config: StackConfig, wiring: ReleaseWiring) -> str:
    """The PostgreSQL URL without a password: TLS with the server's name verified."""
    query = urlencode(
        {"sslmode": "verify-full", "sslrootcert": config.database.ssl_root_cert}, safe="/"
    )
    # The service's role; the login actually used (the role or its rotation clone) comes with
    # the password from the secret (DATABASE_USER).
    user = quote(roles.APP, safe="")
    return (
        f"postgresql://{user}@{wiring.database_address}:{wiring.database_port}/"
        f"{wiring.database_name}?{query}"
    )


def redis_url(wiring: ReleaseWiring) -> str:
    """TLS (`rediss://`) to the primary; the auth token comes from the mounted secret."""
    return f"rediss://{wiring.redis_address}:{wiring.redis_port}/0"


def _database_login(secret_arn: str) -> list[dict[str, Any]]:
    """User and password of one login secret: the alternating-users rotation changes both."""
    return [
        {
            "secretKey": "database_user",
            "remoteRef": {"key": secret_arn, "property": USERNAME_PROPERTY},
        },
        {
            "secretKey": "database_password",
            "remoteRef": {"key": secret_arn, "property": PASSWORD_PROPERTY},
        },
    ]


def _secret_data(config: StackConfig, wiring: ReleaseWiring) -> list[dict[str, Any]]:
    data = [
        *_database_login(wiring.database_login_secret_arns["app"]),
        {
            "secretKey": "redis_username",
            "remoteRef": {"key": wiring.redis_secret_arn, "property": REDIS_USERNAME_PROPERTY},
        },
        {
            "secretKey": "redis_password",
            "remoteRef": {"key": wiring.redis_secret_arn, "property": REDIS_PASSWORD_PROPERTY},
        },
        {
            "secretKey": "api_keys",
            "remoteRef": {"key": wiring.service_secret_arn, "property": API_KEYS_PROPERTY},
        },
    ]
    if config.release.settings.calls_a_model_provider:
        data.append(
            {
                "secretKey": "model_api_key",
                "remoteRef": {
                    "key": wiring.service_secret_arn,
                    "property": MODEL_API_KEY_PROPERTY,
                },
            }
        )
    return data


def _http_route(config: StackConfig) -> dict[str, Any]:
    """The service behind the edge's Gateway, for the stack's host (the route Flagger
    generates with the canary on carries the same parents and host)."""
    edge = config.edge
    if edge is None:
        return {"enabled": False}
    return {
        "enabled": True,
        "parentRefs": [
            {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE, "sectionName": GATEWAY_LISTENER}
        ],
        "hostnames": [edge.host],
        "paths": [{"type": "PathPrefix", "value": "/"}],
    }


def _monitoring(config: StackConfig) -> dict[str, Any]:
    # The label kube-prometheus-stack selects by when its selectors are left at their default.
    labels = {"release": PROMETHEUS_RELEASE}
    return {
        "enabled": config.release.monitoring,
        "podMonitor": {"labels": labels},
        "prometheusRule": {"labels": labels},
    }


def wired_settings(config: StackConfig, wiring: ReleaseWiring) -> dict[str, Any]:
    """The service settings this program fills in from the other resources (by setting name)."""
    return {
        "database_url": database_url(config, wiring),
        "redis_url": redis_url(wiring),
        "backup_bucket": wiring.backup_bucket,
        "backup_prefix": wiring.backup_prefix,
        "backup_kms_key_id": wiring.backup_key_arn,
        "aws_region": wiring.region,
    }


def _config(config: StackConfig, wiring: ReleaseWiring) -> dict[str, Any]:
    """The chart's `config` values: the stack's settings as the service's model dumps them
    (camelCase keys, the chart derives each variable's name from its key), plus the wiring."""
    tuned = config.release.settings.model_dump(by_alias=True, exclude_none=True)
    return {
        **tuned,
        **{to_camel(name): value for name, value in wired_settings(config, wiring).items()},
    }


def build_release_values(config: StackConfig, wiring: ReleaseWiring) -> dict[str, Any]:
    release = config.release
    settings = release.settings
    image: dict[str, Any] = {"repository": wiring.repository_url, "tag": release.image.tag}
    if release.image.digest is not None:
        image["digest"] = release.image.digest
    optional: dict[str, Any] = {}
    if release.resources is not None:
        optional["resources"] = release.resources.model_dump(by_alias=True)
    return {
        **optional,
        "image": image,
        "replicaCount": release.replicas,
        "serviceAccount": {
            "create": True,
            "name": release.service_account,
            "annotations": {IRSA_ANNOTATION: wiring.service_role_arn},
        },
        "config": _config(config, wiring),
        "externalSecrets": {
            "enabled": True,
            "refreshInterval": SECRET_REFRESH_INTERVAL,
            "secretStoreRef": {"name": SECRET_STORE_NAME, "kind": "SecretStore"},
            # The SecretStore authenticates as the service's ServiceAccount, which must exist
            # before the pre-install migration hook's ExternalSecret can sync.
            "serviceAccountAuth": True,
            "data": _secret_data(config, wiring),
            # Each job mounts its own login, never the service's.
            **{
                job: {
                    "data": _database_login(wiring.database_login_secret_arns[_JOB_WORKLOAD[job]])
                }
                for job in JOB_LOGINS
            },
        },
        "autoscaling": {
            "enabled": release.autoscaling.enabled,
            "minReplicas": release.autoscaling.min_replicas,
            "maxReplicas": release.autoscaling.max_replicas,
            "targetCPUUtilizationPercentage": release.autoscaling.target_cpu_utilization_percentage,
        },
        "podDisruptionBudget": {
            "enabled": release.pod_disruption_budget.enabled,
            "minAvailable": release.pod_disruption_budget.min_available,
        },
        "httpRoute": _http_route(config),
        "ingress": {"enabled": False},
        "canary": {
            "enabled": release.canary,
            "provider": CANARY_PROVIDER,
            # The load goes through the Gateway's proxies with the public host, as clients'
            # does, so the weighted route sends part of it to the canary.
            "loadTest": {
                "gatewayUrl": f"http://{GATEWAY_SERVICE}.{GATEWAY_NAMESPACE}:{GATEWAY_PORT}"
            },
        },
        "monitoring": _monitoring(config),
        "networkPolicy": {
            "enabled": True,
            "gateway": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE},
            "prometheusNamespace": PROMETHEUS_NAMESPACE,
            "egress": {
                "postgres": {
                    "cidrs": list(wiring.private_subnet_cidrs),
                    "port": wiring.database_port,
                },
                "redis": {"cidrs": list(wiring.private_subnet_cidrs), "port": wiring.redis_port},
                "s3": {"cidrs": [*wiring.s3_cidrs, wiring.vpc_cidr]},
                "modelProvider": {
                    "cidrs": ["0.0.0.0/0"] if settings.calls_a_model_provider else [],
                    "port": HTTPS_PORT,
                },
            },
        },
        "backup": {
            "enabled": True,
            "schedule": release.backup_schedule,
            # Only the backup job holds the role that may write the bucket.
            "serviceAccount": {
                "create": True,
                "name": release.backup_service_account,
                "annotations": {IRSA_ANNOTATION: wiring.backup_role_arn},
            },
        },
        "retention": {"enabled": True},
    }
