"""S3 for database dumps: versioned, SSE-KMS, never public, TLS only, expiring by default.

With a replica region configured (prod), every dump is also copied to a bucket in that
region, encrypted there with a key of that region, so a regional outage does not take the
backups with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config import BackupsConfig
from infra.iam import Account, allow, policy_document, service_trust_policy
from infra.kms import encryption_key
from infra.tags import Tags


def tls_only_statements(bucket_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """Deny any request over plain HTTP or TLS older than 1.2, whoever makes it."""
    objects = pulumi.Output.from_input(bucket_arn).apply(lambda arn: f"{arn}/*")
    return [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, objects],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "DenyOutdatedTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, objects],
            "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
        },
    ]


@dataclass(frozen=True)
class BackupsArgs:
    config: BackupsConfig
    account: Account
    tags: Tags
    # Set with `config.replica_region`: the provider of that region.
    replica_provider: pulumi.ProviderResource | None = None
    # prod/staging: the buckets and their keys survive `pulumi destroy`.
    protect: bool = False


@dataclass(frozen=True)
class _Bucket:
    bucket: aws.s3.Bucket
    key: aws.kms.Key
    versioning: aws.s3.BucketVersioning


class Backups(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    prefix: str
    region: str

    def __init__(
        self, name: str, args: BackupsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-platform:backups:Backups", name, None, opts)
        if (args.config.replica_region is None) != (args.replica_provider is None):
            raise ValueError("a replica region needs its provider, and only then")
        primary = self._bucket(f"{name}-backups", args, provider=None)
        self.replica_bucket_name: pulumi.Output[str] | None = None
        if args.replica_provider is not None and args.config.replica_region is not None:
            replica_account = Account(
                args.account.account_id, args.account.partition, args.config.replica_region
            )
            replica = self._bucket(
                f"{name}-backups-replica",
                BackupsArgs(args.config, replica_account, args.tags, protect=args.protect),
                provider=args.replica_provider,
            )
            self._replicate(name, args, primary, replica)
            self.replica_bucket_name = replica.bucket.bucket

        self.bucket_name = primary.bucket.bucket
        self.bucket_arn = primary.bucket.arn
        self.key_arn = primary.key.arn
        self.prefix = args.config.prefix
        self.region = args.account.region
        self.register_outputs(
            {
                "bucketName": self.bucket_name,
                "prefix": self.prefix,
                "replicaBucketName": self.replica_bucket_name,
            }
        )

    def _bucket(
        self, name: str, args: BackupsArgs, provider: pulumi.ProviderResource | None
    ) -> _Bucket:
        tags, config = args.tags, args.config
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        key = encryption_key(
            name,
            description=f"Database dumps in {name}",
            account=args.account,
            tags=tags.named(name),
            parent=self,
            provider=provider,
            protect=args.protect,
        )
        bucket = aws.s3.Bucket(
            name,
            bucket_prefix=f"{name}-",
            force_destroy=False,
            tags=tags.named(name),
            opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=args.protect),
        )
        aws.s3.BucketOwnershipControls(
            name,
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        block = aws.s3.BucketPublicAccessBlock(
            name,
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            name,
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            name,
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=key.arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            name,
            bucket=bucket.id,
            policy=policy_document(tls_only_statements(bucket.arn)),
            # A policy put before the block is in place could be judged public.
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[block]),
        )
        aws.s3.BucketLifecycleConfiguration(
            name,
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-dumps",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=config.expire_after_days
                    ),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=config.noncurrent_expire_after_days
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=1
                    ),
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[versioning]),
        )
        return _Bucket(bucket=bucket, key=key, versioning=versioning)

    def _replicate(self, name: str, args: BackupsArgs, source: _Bucket, target: _Bucket) -> None:
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-backups-replication",
            description=f"S3 copies {name}'s dumps to the replica region",
            assume_role_policy=service_trust_policy("s3.amazonaws.com", args.account),
            tags=args.tags.named(f"{name}-backups-replication"),
            opts=child,
        )
        source_objects = source.bucket.arn.apply(lambda arn: f"{arn}/*")
        target_objects = target.bucket.arn.apply(lambda arn: f"{arn}/*")
        source_region = args.account.region
        target_region = args.config.replica_region
        aws.iam.RolePolicy(
            f"{name}-backups-replication",
            role=role.id,
            policy=policy_document(
                [
                    allow(
                        "ReadSourceConfiguration",
                        ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                        [source.bucket.arn],
                    ),
                    allow(
                        "ReadSourceVersions",
                        [
                            "s3:GetObjectVersionForReplication",
                            "s3:GetObjectVersionAcl",
                            "s3:GetObjectVersionTagging",
                        ],
                        [source_objects],
                    ),
                    allow(
                        "WriteReplicas",
                        ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                        [target_objects],
                    ),
                    allow(
                        "DecryptSource",
                        ["kms:Decrypt"],
                        [source.key.arn],
                        {"StringEquals": {"kms:ViaService": f"s3.{source_region}.amazonaws.com"}},
                    ),
                    allow(
                        "EncryptReplica",
                        ["kms:Encrypt", "kms:GenerateDataKey"],
                        [target.key.arn],
                        {"StringEquals": {"kms:ViaService": f"s3.{target_region}.amazonaws.com"}},
                    ),
                ]
            ),
            opts=child,
        )
        aws.s3.BucketReplicationConfig(
            f"{name}-backups-replication",
            bucket=source.bucket.id,
            role=role.arn,
            rules=[
                aws.s3.BucketReplicationConfigRuleArgs(
                    id="replicate-dumps",
                    status="Enabled",
                    filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                    delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                        status="Enabled"
                    ),
                    source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
                        sse_kms_encrypted_objects=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                            status="Enabled"
                        )
                    ),
                    destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
                        bucket=target.bucket.arn,
                        storage_class="STANDARD_IA",
                        encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                            replica_kms_key_id=target.key.arn
                        ),
                    ),
                )
            ],
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[source.versioning, target.versioning]
            ),
        )
