"""Pulumi mocks that answer like AWS: realistic IDs, ARNs and endpoints for every resource type
the program declares, and the provider functions it calls, all deterministic.

Dependent values (ARNs in IAM documents, endpoints in the chart's values) therefore resolve to
strings of the real shape, which the tests and the policy pack check.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pulumi

# Not one of AWS's documentation accounts (the pack refuses those in access entries).
ACCOUNT_ID = "406812953771"
DEPLOYER_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/platform/deployer"
# Add-on builds in EKS's naming (`v<version>-eksbuild.<n>`): offline stand-ins only; a real
# deploy asks EKS (`get_addon_version`) for its default build of the cluster's version.
ADDON_VERSIONS = {
    "vpc-cni": "v1.21.1-eksbuild.1",
    "kube-proxy": "v1.36.0-eksbuild.1",
    "coredns": "v1.13.1-eksbuild.1",
    "aws-ebs-csi-driver": "v1.53.0-eksbuild.1",
}
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
# Pulumi's wire format marks a secret as {SIG_KEY: SECRET_SIG, "value": ...}.
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 - a type marker


def _hex(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


class AwsLikeMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and provider calls the way the real providers would,
    deterministically, so that dependent values (ARNs in policies, endpoints in the chart's
    values) resolve to realistic strings."""

    def __init__(self, region: str) -> None:
        self.default_region = region
        self.provider_regions: dict[str, str] = {}

    def _region(self, args: pulumi.runtime.MockResourceArgs) -> str:
        # A provider reference is "<urn>::<id>"; the URN ends with the provider's name.
        provider_urn = (args.provider or "").rsplit("::", 1)[0]
        name = provider_urn.rsplit("::", 1)[-1]
        return self.provider_regions.get(name, self.default_region)

    def call(  # type: ignore[override] # the monitor also accepts a bare dict (no failures)
        self, args: pulumi.runtime.MockCallArgs
    ) -> dict[str, Any] | tuple[dict[str, Any], list[tuple[str, str]]]:
        region = self.default_region
        answers: dict[str, Callable[[], dict[str, Any]]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": lambda: {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/deployer/pulumi",
                "userId": "AROAEXAMPLE:pulumi",
                "id": ACCOUNT_ID,
            },
            "aws:iam/getSessionContext:getSessionContext": lambda: {
                "arn": args.args.get("arn", ""),
                "issuerArn": DEPLOYER_ROLE,
                "issuerId": "AROAEXAMPLEDEPLOYER",
                "issuerName": "deployer",
                "sessionName": "pulumi",
                "id": args.args.get("arn", ""),
            },
            "aws:ecr/getImage:getImage": lambda: _image(args.args, region),
            "aws:eks/getAddonVersion:getAddonVersion": lambda: {
                "addonName": args.args.get("addonName"),
                "kubernetesVersion": args.args.get("kubernetesVersion"),
                "version": ADDON_VERSIONS[str(args.args.get("addonName"))],
                "id": str(args.args.get("addonName")),
            },
            "aws:index/getPartition:getPartition": lambda: {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
                "id": "aws",
            },
            "aws:index/getAvailabilityZones:getAvailabilityZones": lambda: {
                "names": [f"{region}a", f"{region}b", f"{region}c"],
                "zoneIds": ["euw1-az1", "euw1-az2", "euw1-az3"],
                "id": region,
            },
            "aws:route53/getZone:getZone": lambda: {
                "id": f"Z{_hex(str(args.args.get('name')), 20).upper()}",
                "zoneId": f"Z{_hex(str(args.args.get('name')), 20).upper()}",
                "name": str(args.args.get("name", "")).rstrip("."),
                "privateZone": False,
                "arn": "arn:aws:route53:::hostedzone/"
                f"Z{_hex(str(args.args.get('name')), 20).upper()}",
            },
            "aws:ec2/getManagedPrefixList:getManagedPrefixList": lambda: {
                "id": "pl-6da54004",
                "name": args.args.get("name", ""),
                "entries": [
                    {"cidr": "52.218.0.0/17", "description": ""},
                    {"cidr": "3.5.64.0/21", "description": ""},
                ],
            },
        }
        zone_lookup = args.token == "aws:route53/getZone:getZone"  # noqa: S105 - a type token
        if zone_lookup and str(args.args.get("name")).endswith(".invalid"):
            # RFC 2606's reserved TLD: the zone that is not there, a failed invoke as the
            # provider reports it.
            return {}, [("name", "no matching Route 53 Hosted Zone found")]
        if args.token not in answers:
            raise NotImplementedError(f"the offline run has no answer for {args.token}")
        return answers[args.token]()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ.startswith("pulumi:providers:"):
            region = args.inputs.get("region")
            if isinstance(region, str):
                self.provider_regions[args.name] = region
            return f"{args.name}-provider-id", dict(args.inputs)
        if not args.custom:
            return "", {}
        outputs = dict(args.inputs)
        resource_id = outputs.pop("id", None) or f"{args.name}-{_hex(args.name, 8)}"
        shaper = _SHAPERS.get(args.typ)
        if shaper is not None:
            resource_id = shaper(args, outputs, self._region(args)) or resource_id
        if args.typ.startswith("aws:"):
            outputs.setdefault("arn", _generic_arn(args.typ, args.name, self._region(args)))
        return resource_id, outputs


def _image(args: dict[str, Any], region: str) -> dict[str, Any]:
    """The image pushed under the tag: its digest derived from the tag, as stable as ECR's
    immutable tags."""
    repository = str(args.get("repositoryName", ""))
    tag = str(args.get("imageTag", ""))
    registry = str(args.get("registryId") or ACCOUNT_ID)
    digest = "sha256:" + hashlib.sha256(f"{repository}:{tag}".encode()).hexdigest()
    return {
        "id": digest,
        "imageDigest": digest,
        "imageTag": tag,
        "imageTags": [tag],
        "imagePushedAt": 1764460800,
        "imageSizeInBytes": 187_000_000,
        "imageUri": f"{registry}.dkr.ecr.{region}.amazonaws.com/{repository}@{digest}",
        "registryId": registry,
        "repositoryName": repository,
    }


def _generic_arn(type_: str, name: str, region: str) -> str:
    service = type_.split(":")[1].split("/")[0]
    return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{name}"


Shaper = Callable[[pulumi.runtime.MockResourceArgs, dict[str, Any], str], str | None]


def _prefixed_id(prefix: str) -> Shaper:
    def shape(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], region: str) -> str:
        return f"{prefix}-{_hex(args.name, 17)}"

    return shape


def _kms_key(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], region: str) -> str:
    key_id = "-".join(_hex(args.name, 32)[i:j] for i, j in ((0, 8), (8, 12), (12, 16), (16, 20)))
    key_id += "-" + _hex(args.name + "tail", 12)
    out["keyId"] = key_id
    out["arn"] = f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/{key_id}"
    return key_id


def _log_group(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], region: str) -> str:
    name = str(out.get("name") or args.name)
    out["arn"] = f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{name}"
    return name


def _iam_role(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], region: str) -> str:
    name = str(out.get("name") or f"{args.name}-{_hex(args.name, 7)}")
    out["name"] = name
    out["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"
    out["uniqueId"] = f"AROA{_hex(name, 17).upper()}"
    return name


def _oidc(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], region: str) -> str:
    host = str(out.get("url", "")).removeprefix("https://")
    out["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{host}"
    return str(out["arn"])


def _eks_cluster(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], region: str) -> str:
    name = str(out.get("name") or args.name)
    token = _hex(name, 32).upper()
    out["name"] = name
    out["arn"] = f"arn:aws:eks:{region}:{ACCOUNT_ID}:cluster/{name}"
    out["endpoint"] = f"https://{token}.gr7.{region}.eks.amazonaws.com"
    out["certificateAuthority"] = {"data": base64.b64encode(b"offline test CA").decode()}
    out["identities"] = [
        {"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{token}"}]}
    ]
    out["vpcConfig"] = {
        **dict(out.get("vpcConfig") or {}),
        "clusterSecurityGroupId": f"sg-{_hex(name + 'cluster', 17)}",
        "vpcId": f"vpc-{_hex(name, 17)}",
    }
    out["status"] = "ACTIVE"
    return name


def _launch_template(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], _: str) -> str:
    out["latestVersion"] = 1
    return f"lt-{_hex(args.name, 17)}"


def _rds_instance(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], region: str) -> str:
    identifier = str(out.get("identifier") or args.name)
    out["identifier"] = identifier
    out["address"] = f"{identifier}.c{_hex(identifier, 11)}.{region}.rds.amazonaws.com"
    out["endpoint"] = f"{out['address']}:{out.get('port', 5432)}"
    out["arn"] = f"arn:aws:rds:{region}:{ACCOUNT_ID}:db:{identifier}"
    if out.get("manageMasterUserPassword"):
        out["masterUserSecrets"] = [
            {
                "secretArn": f"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:"
                f"rds!db-{_hex(identifier, 8)}-{_hex(identifier, 4)}-{_hex(identifier, 12)}-AbCdEf",
                "kmsKeyId": out.get("masterUserSecretKmsKeyId"),
                "secretStatus": "active",
            }
        ]
    return identifier


def _named(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], _: str) -> str:
    name = str(out.get("name") or f"{args.name}-{_hex(args.name, 7)}")
    out["name"] = name
    return name


def _replication_group(
    args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], region: str
) -> str:
    group_id = str(out.get("replicationGroupId") or args.name)
    short = _hex(group_id, 6)
    out["primaryEndpointAddress"] = f"master.{group_id}.{short}.euw1.cache.amazonaws.com"
    out["readerEndpointAddress"] = f"replica.{group_id}.{short}.euw1.cache.amazonaws.com"
    out["arn"] = f"arn:aws:elasticache:{region}:{ACCOUNT_ID}:replicationgroup:{group_id}"
    return group_id


def _secret(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], region: str) -> str:
    name = str(out.get("name") or f"{out.get('namePrefix', args.name)}{_hex(args.name, 6)}")
    out["name"] = name
    out["arn"] = f"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:{name}-{_hex(name, 6)}"
    return str(out["arn"])


def _sar_stack(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], region: str) -> str:
    """A Serverless Application Repository stack: the rotation templates output the function's
    ARN as RotationLambdaARN."""
    name = str(args.inputs.get("name", args.name))
    out["outputs"] = {
        "RotationLambdaARN": f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}",
    }
    return (
        f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/serverlessrepo-{name}/{_hex(name, 8)}"
    )


def _repository(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], region: str) -> str:
    name = str(out.get("name") or args.name)
    out["arn"] = f"arn:aws:ecr:{region}:{ACCOUNT_ID}:repository/{name}"
    out["repositoryUrl"] = f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{name}"
    out["registryId"] = ACCOUNT_ID
    return name


def _bucket(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], region: str) -> str:
    name = str(out.get("bucket") or f"{out.get('bucketPrefix', args.name)}{_hex(args.name, 12)}")
    out["bucket"] = name
    out["arn"] = f"arn:aws:s3:::{name}"
    out["region"] = region
    out["bucketRegionalDomainName"] = f"{name}.s3.{region}.amazonaws.com"
    return name


def _random_password(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], _: str) -> str:
    length = int(out.get("length", 32))
    # Marked secret as the real provider does, so the recording redacts it.
    out["result"] = {SIG_KEY: SECRET_SIG, "value": (_hex(args.name, 64) * 4)[:length]}
    return "none"


def _random_id(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], _: str) -> str:
    length = int(out.get("byteLength", 4))
    out["hex"] = _hex(args.name, 2 * length)
    out["b64Url"] = base64.urlsafe_b64encode(bytes.fromhex(out["hex"])).decode().rstrip("=")
    return str(out["b64Url"])


def _certificate(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], region: str) -> str:
    """ACM asks for one CNAME per name (https://docs.aws.amazon.com/acm/latest/userguide/
    dns-validation.html)."""
    domain = str(out.get("domainName", ""))
    token = _hex(domain, 32)
    out["arn"] = f"arn:aws:acm:{region}:{ACCOUNT_ID}:certificate/{token[:8]}-{token[8:12]}-" + (
        f"{token[12:16]}-{token[16:20]}-{token[20:32]}"
    )
    out["domainValidationOptions"] = [
        {
            "domainName": domain,
            "resourceRecordName": f"_{token[:32]}.{domain}.",
            "resourceRecordType": "CNAME",
            "resourceRecordValue": f"_{_hex(domain + 'v', 32)}.xlfgrmvvlj.acm-validations.aws.",
        }
    ]
    out["status"] = "PENDING_VALIDATION"
    return str(out["arn"])


def _dns_record(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], _: str) -> str:
    name = str(out.get("name", "")).rstrip(".")
    out["fqdn"] = name
    return f"{out.get('zoneId')}_{name}_{out.get('type')}"


def _helm_release(args: pulumi.runtime.MockResourceArgs, out: dict[str, Any], _: str) -> str:
    out["status"] = {"status": "deployed", "name": out.get("name"), "revision": 1}
    return f"{out.get('namespace')}/{out.get('name')}"


_SHAPERS: dict[str, Shaper] = {
    "aws:ec2/vpc:Vpc": _prefixed_id("vpc"),
    "aws:ec2/subnet:Subnet": _prefixed_id("subnet"),
    "aws:ec2/securityGroup:SecurityGroup": _prefixed_id("sg"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": _prefixed_id("sg"),
    "aws:ec2/internetGateway:InternetGateway": _prefixed_id("igw"),
    "aws:ec2/eip:Eip": _prefixed_id("eipalloc"),
    "aws:ec2/natGateway:NatGateway": _prefixed_id("nat"),
    "aws:ec2/routeTable:RouteTable": _prefixed_id("rtb"),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": _prefixed_id("rtbassoc"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": _prefixed_id("vpce"),
    "aws:ec2/flowLog:FlowLog": _prefixed_id("fl"),
    "aws:ec2/launchTemplate:LaunchTemplate": _launch_template,
    "aws:kms/key:Key": _kms_key,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:iam/role:Role": _iam_role,
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": _oidc,
    "aws:eks/cluster:Cluster": _eks_cluster,
    "aws:rds/instance:Instance": _rds_instance,
    "aws:rds/subnetGroup:SubnetGroup": _named,
    "aws:rds/parameterGroup:ParameterGroup": _named,
    "aws:elasticache/subnetGroup:SubnetGroup": _named,
    "aws:elasticache/replicationGroup:ReplicationGroup": _replication_group,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:serverlessrepository/cloudFormationStack:CloudFormationStack": _sar_stack,
    "aws:ecr/repository:Repository": _repository,
    "aws:s3/bucket:Bucket": _bucket,
    "random:index/randomPassword:RandomPassword": _random_password,
    "random:index/randomId:RandomId": _random_id,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _prefixed_id("sgr"),
    "aws:acm/certificate:Certificate": _certificate,
    "aws:route53/record:Record": _dns_record,
    RELEASE_TYPE: _helm_release,
}
