"""S3 for database dumps: versioned, SSE-KMS, never public, TLS only, expiring by default.

With a replica region configured (prod), every dump is also copied to a bucket in that
region, encrypted there with a key of that region, so a regional outage does not take the
backups with it. That copy cannot be deleted, by a mistake or a compromised role:
- the replica bucket has Object Lock in COMPLIANCE mode with a default retention of at least
  the dumps' expiry: no one, the root user included, deletes a locked version before its
  retention ends (docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html);
- delete markers are not replicated ("By default ... Amazon S3 adds a delete marker in the
  source bucket only. This action helps protect data in the destination buckets from
  accidental or malicious deletions", .../userguide/delete-marker-replication.html) and
  version deletions never are (.../replication-what-is-isnt-replicated.html);
- both buckets' policies deny deleting versions and changing lifecycle, replication, lock,
  versioning or the policy itself to everyone but the break-glass role.
A DR restore role may read the replica and decrypt it with the replica region's key
(docs/runbooks/region-loss.md).

The stack that replicates creates the break-glass role itself (named
`backups.breakGlassRoleName`): a role's trust policy may only name principals that exist
("Invalid principal in policy", docs.aws.amazon.com/IAM/latest/UserGuide/
reference_policies_elements_principal.html#principal-roles), so the restore role's trust
refers to the created role's ARN. Assumed only with MFA, by the configured principals or the
account's admins; it may do what the runbooks need and nothing else.
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

# What only the break-glass role may do to a backup bucket or its objects.
PROTECTED_BUCKET_ACTIONS = (
    "s3:DeleteBucket",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketPolicy",
    "s3:PutLifecycleConfiguration",
    "s3:PutReplicationConfiguration",
    "s3:DeleteReplicationConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutBucketObjectLockConfiguration",
)
PROTECTED_OBJECT_ACTIONS = (
    "s3:DeleteObjectVersion",
    "s3:BypassGovernanceRetention",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
)
# In the replica also the delete marker: nothing but replication writes there.
REPLICA_OBJECT_ACTIONS = ("s3:DeleteObject",)


def role_arn(account: Account, name: str) -> str:
    return f"arn:{account.partition}:iam::{account.account_id}:role/{name}"


def protection_statements(
    bucket_arn: pulumi.Input[str], break_glass_role_arn: pulumi.Input[str], *, replica: bool
) -> list[dict[str, Any]]:
    """Deny the destructive actions to every principal but the break-glass role."""
    objects = pulumi.Output.from_input(bucket_arn).apply(lambda arn: f"{arn}/*")
    unless = {"ArnNotEquals": {"aws:PrincipalArn": break_glass_role_arn}}
    object_actions = [*PROTECTED_OBJECT_ACTIONS, *(REPLICA_OBJECT_ACTIONS if replica else ())]
    return [
        {
            "Sid": "OnlyBreakGlassChangesProtection",
            "Effect": "Deny",
            "Principal": "*",
            "Action": list(PROTECTED_BUCKET_ACTIONS),
            "Resource": [bucket_arn],
            "Condition": unless,
        },
        {
            "Sid": "OnlyBreakGlassDeletesBackups",
            "Effect": "Deny",
            "Principal": "*",
            "Action": object_actions,
            "Resource": [objects],
            "Condition": unless,
        },
    ]


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
    # The bucket receives replicas: Object Lock on, delete markers denied too.
    is_replica: bool = False


@dataclass(frozen=True)
class _Bucket:
    name: str
    bucket: aws.s3.Bucket
    key: aws.kms.Key
    versioning: aws.s3.BucketVersioning
    provider: pulumi.ProviderResource | None
    is_replica: bool
    # What the bucket policy must come after: it denies changing them to all but break glass.
    settings: list[pulumi.Resource]


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
        self.break_glass_role_arn: pulumi.Input[str] | None = None
        if args.config.break_glass_role_name is not None:
            self.break_glass_role_arn = role_arn(args.account, args.config.break_glass_role_name)
        break_glass: aws.iam.Role | None = None
        if args.config.replica_region is not None:
            break_glass = self._break_glass_role(args)
            self.break_glass_role_arn = break_glass.arn
        primary = self._bucket(f"{name}-backups", args, provider=None)
        self.replica_bucket_name: pulumi.Output[str] | None = None
        self.replica_key_arn: pulumi.Output[str] | None = None
        self.restore_role_arn: pulumi.Output[str] | None = None
        if args.replica_provider is not None and args.config.replica_region is not None:
            replica_account = Account(
                args.account.account_id, args.account.partition, args.config.replica_region
            )
            replica = self._bucket(
                f"{name}-backups-replica",
                BackupsArgs(
                    args.config, replica_account, args.tags, protect=args.protect, is_replica=True
                ),
                provider=args.replica_provider,
            )
            replication = self._replicate(name, args, primary, replica)
            self._policy(args, replica, after=[])
            self._policy(args, primary, after=[replication])
            self.replica_bucket_name = replica.bucket.bucket
            self.replica_key_arn = replica.key.arn
            assert break_glass is not None
            restore_role = self._restore_role(name, args, replica, break_glass)
            self.restore_role_arn = restore_role.arn
            self._break_glass_policy(args, break_glass, [primary, replica], restore_role)

        else:
            self._policy(args, primary, after=[])
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
                "replicaKeyArn": self.replica_key_arn,
                "restoreRoleArn": self.restore_role_arn,
                "breakGlassRoleArn": self.break_glass_role_arn,
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
            # Object Lock can only be turned on when a bucket is created.
            object_lock_enabled=True if args.is_replica else None,
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
        protected: list[pulumi.Resource] = []
        if args.is_replica:
            protected.append(
                aws.s3.BucketObjectLockConfiguration(
                    name,
                    bucket=bucket.id,
                    object_lock_enabled="Enabled",
                    rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                        default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                            mode="COMPLIANCE", days=config.lock_days
                        )
                    ),
                    opts=pulumi.ResourceOptions(
                        parent=self, provider=provider, depends_on=[versioning]
                    ),
                )
            )
        lifecycle = aws.s3.BucketLifecycleConfiguration(
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
        return _Bucket(
            name=name,
            bucket=bucket,
            key=key,
            versioning=versioning,
            provider=provider,
            is_replica=args.is_replica,
            settings=[block, versioning, lifecycle, *protected],
        )

    def _policy(self, args: BackupsArgs, bucket: _Bucket, after: list[pulumi.Resource]) -> None:
        """TLS only and, with a break-glass role, the deny on the protected actions. Once in
        place it denies the deployer too (PutLifecycleConfiguration, PutReplicationConfiguration,
        PutBucketVersioning, Object Lock, the policy itself), so it comes after every setting
        it protects, replication included, or the first deploy races it; a later change to
        those settings is made by the break-glass role (docs/runbooks/backup-deletion.md). A
        policy put before the public access block could also be judged public."""
        statements = tls_only_statements(bucket.bucket.arn)
        if self.break_glass_role_arn is not None:
            statements += protection_statements(
                bucket.bucket.arn, self.break_glass_role_arn, replica=bucket.is_replica
            )
        aws.s3.BucketPolicy(
            bucket.name,
            bucket=bucket.bucket.id,
            policy=policy_document(statements),
            opts=pulumi.ResourceOptions(
                parent=self, provider=bucket.provider, depends_on=[*bucket.settings, *after]
            ),
        )

    def _replicate(
        self, name: str, args: BackupsArgs, source: _Bucket, target: _Bucket
    ) -> aws.s3.BucketReplicationConfig:
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
                        # No s3:ReplicateDelete: deletions never reach the replica.
                        ["s3:ReplicateObject", "s3:ReplicateTags"],
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
        return aws.s3.BucketReplicationConfig(
            f"{name}-backups-replication",
            bucket=source.bucket.id,
            role=role.arn,
            rules=[
                aws.s3.BucketReplicationConfigRuleArgs(
                    id="replicate-dumps",
                    status="Enabled",
                    filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                    # A delete in the primary region must not hide the copy (module docstring).
                    delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                        status="Disabled"
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

    def _break_glass_role(self, args: BackupsArgs) -> aws.iam.Role:
        name = args.config.break_glass_role_name
        assert name is not None  # required with a replica region (infra/config.py)
        principals = args.config.break_glass_principals or [args.account.root_arn]
        return aws.iam.Role(
            name,
            name=name,
            description="Break glass for the backup buckets: assumed with MFA only",
            assume_role_policy=policy_document(
                [
                    {
                        "Sid": "OperatorsWithMfa",
                        "Effect": "Allow",
                        "Principal": {"AWS": sorted(principals)},
                        "Action": "sts:AssumeRole",
                        "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
                    }
                ]
            ),
            max_session_duration=3600,
            tags=args.tags.named(name),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )

    def _break_glass_policy(
        self,
        args: BackupsArgs,
        role: aws.iam.Role,
        buckets: list[_Bucket],
        restore_role: aws.iam.Role,
    ) -> None:
        """What the runbooks do with it (docs/runbooks/backup-deletion.md, region-loss.md):
        list and delete versions, change the protected bucket settings, assume the restore
        role. The bucket policies deny those actions to everyone else."""
        bucket_arns = [b.bucket.arn for b in buckets]
        objects = [b.bucket.arn.apply(lambda arn: f"{arn}/*") for b in buckets]
        aws.iam.RolePolicy(
            f"{args.config.break_glass_role_name}",
            role=role.id,
            policy=policy_document(
                [
                    allow(
                        "ListBackups",
                        ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketPolicy"],
                        bucket_arns,
                    ),
                    allow("ChangeProtection", list(PROTECTED_BUCKET_ACTIONS), bucket_arns),
                    allow(
                        "DeleteVersions",
                        [*PROTECTED_OBJECT_ACTIONS, *REPLICA_OBJECT_ACTIONS],
                        objects,
                    ),
                    allow("AssumeRestoreRole", ["sts:AssumeRole"], [restore_role.arn]),
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _restore_role(
        self, name: str, args: BackupsArgs, replica: _Bucket, break_glass: aws.iam.Role
    ) -> aws.iam.Role:
        """Who restores in the DR region: reads the replica's versions and decrypts them with
        the replica region's key (the key policy lets IAM delegate, infra/kms.py). Assumed
        only from the break-glass role, with MFA (the operators of the region-loss runbook);
        it cannot delete or change anything."""
        region = args.config.replica_region
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-dr-restore",
            description=f"Restores {name}'s database from the replica bucket in {region}",
            assume_role_policy=policy_document(
                [
                    {
                        "Sid": "BreakGlassWithMfa",
                        "Effect": "Allow",
                        "Principal": {"AWS": break_glass.arn},
                        "Action": "sts:AssumeRole",
                        "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
                    }
                ]
            ),
            tags=args.tags.named(f"{name}-dr-restore"),
            opts=child,
        )
        objects = replica.bucket.arn.apply(lambda arn: f"{arn}/*")
        aws.iam.RolePolicy(
            f"{name}-dr-restore",
            role=role.id,
            policy=policy_document(
                [
                    allow(
                        "ListReplica",
                        ["s3:ListBucket", "s3:ListBucketVersions"],
                        [replica.bucket.arn],
                    ),
                    allow("ReadReplica", ["s3:GetObject", "s3:GetObjectVersion"], [objects]),
                    allow(
                        "DecryptReplica",
                        ["kms:Decrypt"],
                        [replica.key.arn],
                        {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
                    ),
                ]
            ),
            opts=child,
        )
        return role
