"""The database logins of the workloads, one Secrets Manager secret each, rotated by AWS.

Each workload logs in as its own PostgreSQL role (agent_service.persistence.roles: migrator,
service, backup, retention); the RDS master user is break-glass only and never reaches a pod.
Its managed secret (`rds!db-...`) is used by exactly one thing: the rotation function, as the
`masterarn` that creates and alters the logins.

Rotation strategy: alternating users, the AWS-provided template
`SecretsManagerRDSPostgreSQLRotationMultiUser` deployed from the Serverless Application
Repository (https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_available-rotation-templates.html#sar-template-postgre-multiuser).
Why not single user: single-user rotation changes the password of the login the pods use, and
"connections ... that use the old credentials" fail until they read the new one
(https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotation-strategy.html); here a pod
reads the new secret only after External Secrets' refresh and the kubelet's sync (minutes).
Alternating users keeps the previous login valid until the next rotation, so every pod moves
over at its own pace with zero failed connections. Why not RDS IAM authentication: a token per
connection is fetched through the AWS API, which the migration, backup and retention jobs and
the local environment would all need to speak, and AWS limits IAM-authenticated connections
per second (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.IAMDBAuth.html,
"Limitations"); file-based credentials work the same way in every place the service runs.

The secret's JSON is the one the template expects (engine, host, port, dbname, username,
password, masterarn: https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_secret_json_structure.html).
The initial password is generated here; the rotation owns the value afterwards (the program
ignores later changes of it). The first rotation is started by the runbook once the migration
has created the roles (docs/runbooks/rotate-credentials.md, "First deployment").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random
from agent_service.persistence import roles

from infra.tags import Tags

ROTATION_APPLICATION = (
    "arn:aws:serverlessrepo:us-east-1:297356227824:applications/"
    "SecretsManagerRDSPostgreSQLRotationMultiUser"
)
# The version the AWS CDK pins for the same template (SecretRotationApplication).
ROTATION_APPLICATION_VERSION = "1.1.671"
ROTATION_DAYS = 30
# What each login is for: the chart's workload, its role (agent_service.persistence.roles).
LOGINS: Mapping[str, str] = {
    "migrator": roles.MIGRATOR,
    "app": roles.APP,
    "backup": roles.BACKUP,
    "retention": roles.RETENTION,
}
USERNAME_PROPERTY = "username"
PASSWORD_PROPERTY = "password"  # noqa: S105 - a JSON property name


@dataclass(frozen=True)
class DatabaseLoginsArgs:
    address: pulumi.Input[str]
    port: int
    database_name: str
    master_secret_arn: pulumi.Input[str]
    # The database's key: encrypts the login secrets, and the master secret is under it too.
    key_arn: pulumi.Input[str]
    region: str
    private_subnet_ids: Sequence[pulumi.Input[str]]
    # The rotation function's security group, admitted by the database's.
    rotation_security_group_id: pulumi.Input[str]
    tags: Tags


def _secret_json(args: DatabaseLoginsArgs, role: str, resolved: dict[str, Any]) -> str:
    return json.dumps(
        {
            "engine": "postgres",
            "host": resolved["host"],
            "port": args.port,
            "dbname": args.database_name,
            USERNAME_PROPERTY: role,
            PASSWORD_PROPERTY: resolved["password"],
            "masterarn": resolved["master"],
        }
    )


class DatabaseLogins(pulumi.ComponentResource):
    secret_arns: dict[str, pulumi.Output[str]]
    rotation_function_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: DatabaseLoginsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-platform:database:DatabaseLogins", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = args.tags
        function_name = f"{name}-db-rotation"
        rotation = aws.serverlessrepository.CloudFormationStack(
            f"{name}-db-rotation",
            name=function_name,
            application_id=ROTATION_APPLICATION,
            semantic_version=ROTATION_APPLICATION_VERSION,
            # The template creates the function's role and its resource policy.
            capabilities=["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"],
            parameters={
                "endpoint": f"https://secretsmanager.{args.region}.amazonaws.com",
                "functionName": function_name,
                "vpcSubnetIds": pulumi.Output.all(*args.private_subnet_ids).apply(",".join),
                "vpcSecurityGroupIds": args.rotation_security_group_id,
                "masterSecretArn": args.master_secret_arn,
                "masterSecretKmsKeyArn": args.key_arn,
                "kmsKeyArn": args.key_arn,
            },
            tags=tags.named(f"{name}-db-rotation"),
            opts=child,
        )
        self.rotation_function_arn = rotation.outputs.apply(
            lambda outputs: str((outputs or {})["RotationLambdaARN"])
        )
        self.secret_arns = {}
        # The release's ExternalSecrets read these: they must exist first.
        self.secret_versions: list[pulumi.Resource] = []
        for workload, role in LOGINS.items():
            resource = f"{name}-db-{workload}"
            initial = random.RandomPassword(
                f"{resource}-initial", length=40, special=False, opts=child
            )
            secret = aws.secretsmanager.Secret(
                resource,
                name_prefix=f"{name}/db-{workload}-",
                description=f"PostgreSQL login of the {workload} workload ({role}), rotated by "
                f"{function_name} (alternating users)",
                kms_key_id=args.key_arn,
                recovery_window_in_days=7,
                tags=tags.named(resource, workload=workload),
                opts=child,
            )
            value = pulumi.Output.all(
                host=args.address, password=initial.result, master=args.master_secret_arn
            ).apply(partial(_secret_json, args, role))
            version = aws.secretsmanager.SecretVersion(
                resource,
                secret_id=secret.id,
                secret_string=value,
                # The rotation owns the value from the first rotation on.
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["secretString"]),
            )
            aws.secretsmanager.SecretRotation(
                resource,
                secret_id=secret.id,
                rotation_lambda_arn=self.rotation_function_arn,
                rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                    automatically_after_days=ROTATION_DAYS
                ),
                # The login exists only once the migration created it: the runbook starts the
                # first rotation then.
                rotate_immediately=False,
                opts=child,
            )
            self.secret_arns[workload] = secret.arn
            self.secret_versions.append(version)
        self.register_outputs(
            {
                "secretArns": self.secret_arns,
                "rotationFunctionArn": self.rotation_function_arn,
            }
        )
