"""Where backups live in S3: one dump object and, written last, its manifest (size, SHA-256,
metadata). A backup without a manifest is incomplete and never chosen for a restore."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from agent_service.dr.errors import DrError

MANIFEST_SUFFIX = ".manifest.json"
S3_RETRIES = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10)


@dataclass(frozen=True)
class Manifest:
    key: str
    size: int
    sha256: str
    created_at: str
    source: str
    database: str
    schema_version: int | None
    pg_dump_version: str
    encryption: str

    @property
    def manifest_key(self) -> str:
        return self.key + MANIFEST_SUFFIX

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Manifest:
        data: dict[str, Any] = json.loads(raw)
        return cls(**data)


def s3_client(region: str | None, endpoint_url: str | None) -> Any:
    return boto3.client("s3", region_name=region, endpoint_url=endpoint_url, config=S3_RETRIES)


def normalise_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def read_manifest(client: Any, bucket: str, key: str) -> Manifest:
    manifest_key = key if key.endswith(MANIFEST_SUFFIX) else key + MANIFEST_SUFFIX
    try:
        body = client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in {"NoSuchKey", "404"}:
            raise DrError(
                f"backup s3://{bucket}/{key.removesuffix(MANIFEST_SUFFIX)} not found "
                "(or incomplete: it has no manifest)"
            ) from None
        raise DrError(f"cannot read s3://{bucket}/{manifest_key}: {code or exc}") from None
    except BotoCoreError as exc:
        raise DrError(f"cannot reach S3 for s3://{bucket}/{manifest_key}: {exc}") from None
    return Manifest.from_json(body)


def latest_manifest(client: Any, bucket: str, prefix: str) -> Manifest:
    """The newest complete backup under `prefix` (keys sort by their UTC timestamp)."""
    newest: str | None = None
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                key = entry["Key"]
                if key.endswith(MANIFEST_SUFFIX) and (newest is None or key > newest):
                    newest = key
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise DrError(f"cannot list s3://{bucket}/{prefix}: {code or exc}") from None
    except BotoCoreError as exc:
        raise DrError(f"cannot reach S3 to list s3://{bucket}/{prefix}: {exc}") from None
    if newest is None:
        raise DrError(f"no complete backup under s3://{bucket}/{prefix}")
    return read_manifest(client, bucket, newest)
