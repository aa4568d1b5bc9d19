"""ECR: the service image, immutable tags, scanned on push, encrypted with its own key."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config import RegistryConfig
from infra.iam import Account
from infra.kms import encryption_key
from infra.tags import Tags


def lifecycle_policy(config: RegistryConfig) -> str:
    """Untagged layers go after a few days; of the tagged images, the newest N stay."""
    rules: list[dict[str, Any]] = [
        {
            "rulePriority": 1,
            "description": f"Expire untagged images after {config.untagged_expiry_days} days",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": config.untagged_expiry_days,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": f"Keep the last {config.keep_images} images",
            "selection": {
                "tagStatus": "any",
                "countType": "imageCountMoreThan",
                "countNumber": config.keep_images,
            },
            "action": {"type": "expire"},
        },
    ]
    return json.dumps({"rules": rules}, sort_keys=True)


@dataclass(frozen=True)
class RegistryArgs:
    repository_name: str
    config: RegistryConfig
    account: Account
    tags: Tags
    # prod/staging: the released images survive `pulumi destroy`.
    protect: bool = False
    # Images replicated to this region too (registry replication; the destination repository
    # is created by ECR with the same name: docs.aws.amazon.com/AmazonECR/latest/userguide/
    # replication.html).
    replica_region: str | None = None
    # A DR stack: the repository replication filled; it is used, not created.
    replicated: bool = False


class Registry(pulumi.ComponentResource):
    repository_url: pulumi.Output[str]
    repository_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-platform:registry:Registry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = args.account
        if args.replicated:
            # Region-loss: no new repository; the copy's address is fixed by ECR.
            host = f"{account.account_id}.dkr.ecr.{account.region}.amazonaws.com"
            self.repository_url = pulumi.Output.from_input(f"{host}/{args.repository_name}")
            self.repository_arn = pulumi.Output.from_input(
                f"arn:{account.partition}:ecr:{account.region}:{account.account_id}:"
                f"repository/{args.repository_name}"
            )
            self.register_outputs({"repositoryUrl": self.repository_url})
            return
        if args.replica_region is not None:
            aws.ecr.ReplicationConfiguration(
                f"{name}-ecr-replication",
                replication_configuration=aws.ecr.ReplicationConfigurationReplicationConfigurationArgs(
                    rules=[
                        aws.ecr.ReplicationConfigurationReplicationConfigurationRuleArgs(
                            destinations=[
                                aws.ecr.ReplicationConfigurationReplicationConfigurationRuleDestinationArgs(
                                    region=args.replica_region, registry_id=account.account_id
                                )
                            ],
                            repository_filters=[
                                aws.ecr.ReplicationConfigurationReplicationConfigurationRuleRepositoryFilterArgs(
                                    filter=args.repository_name, filter_type="PREFIX_MATCH"
                                )
                            ],
                        )
                    ]
                ),
                opts=child,
            )
        key = encryption_key(
            f"{name}-ecr",
            description=f"Images in the {args.repository_name} repository",
            account=args.account,
            tags=args.tags.named(f"{name}-ecr"),
            parent=self,
            protect=args.protect,
        )
        repository = aws.ecr.Repository(
            f"{name}-repository",
            name=args.repository_name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(
                    encryption_type="KMS", kms_key=key.arn
                )
            ],
            force_delete=False,
            tags=args.tags.named(args.repository_name),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repository.name,
            policy=lifecycle_policy(args.config),
            opts=child,
        )
        self.repository_url = repository.repository_url
        self.repository_arn = repository.arn
        self.register_outputs({"repositoryUrl": self.repository_url})
