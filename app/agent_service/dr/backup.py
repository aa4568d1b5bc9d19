"""Backup: stream `pg_dump -Fc` into S3 as a multipart upload (`agent-service backup`).

Memory holds one part at a time and nothing touches the disk, whatever the database's size.
The SHA-256 is computed while streaming and written, with the size and the metadata, to a
manifest object put after the dump is complete: a backup without a manifest does not exist
for `restore`. A failed attempt aborts its upload and is retried with backoff.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
from datetime import UTC, datetime
from typing import IO, Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from agent_service.dr.errors import DrError
from agent_service.dr.postgres import (
    StderrTail,
    child_env,
    describe,
    pg_program,
    without_password,
)
from agent_service.dr.storage import Manifest, normalise_prefix, s3_client
from agent_service.settings import Settings

MIB = 1024 * 1024
S3_MIN_PART_MIB = 5
# Refusals another attempt cannot change (botocore already retried the transient ones).
PERMANENT_S3_ERRORS = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "InvalidBucketName",
        "KMS.NotFoundException",
        "KMS.DisabledException",
        "NoSuchBucket",
        "SignatureDoesNotMatch",
    }
)


def schema_version(conninfo: str) -> int | None:
    with psycopg.connect(conninfo, connect_timeout=10) as conn:
        exists = conn.execute("SELECT to_regclass('agent_schema_version') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return None
        row = conn.execute("SELECT max(version) FROM agent_schema_version").fetchone()
        return None if row is None or row[0] is None else int(row[0])


def _pg_dump_version(program: str) -> str:
    result = subprocess.run([program, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    return result.stdout.strip()


def _read_part(stream: IO[bytes], size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _encryption(kms_key_id: str | None) -> dict[str, str]:
    """SSE-KMS with the configured key, else SSE-S3: never an unencrypted object, whatever the
    bucket's default (an explicit header also beats a bucket default that was changed)."""
    if kms_key_id:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
    return {"ServerSideEncryption": "AES256"}


class Backup:
    def __init__(
        self,
        settings: Settings,
        *,
        bucket: str,
        prefix: str,
        part_size: int,
        kms_key_id: str | None,
    ) -> None:
        if settings.database_url is None:
            raise DrError("DATABASE_URL is not set: nothing to back up")
        self.settings = settings
        self.url = without_password(settings.database_url)
        self.password = (
            settings.database_password.get_secret_value() if settings.database_password else None
        )
        self.bucket = bucket
        self.prefix = normalise_prefix(prefix)
        self.part_size = part_size
        self.kms_key_id = kms_key_id
        self.client = s3_client(settings.aws_region, settings.s3_endpoint_url)

    def run_once(self) -> Manifest:
        program = pg_program("pg_dump", self.settings.pg_bin_dir)
        created = datetime.now(UTC)
        database = describe(self.url).rsplit("/", 1)[-1]
        key = f"{self.prefix}{created.strftime('%Y%m%dT%H%M%S.%fZ')}-{database}.dump"
        try:
            version = schema_version(self.settings.database_conninfo())
        except psycopg.Error as exc:
            raise DrError(f"cannot read {describe(self.url)}: {exc}") from None
        encryption = _encryption(self.kms_key_id)
        metadata = {
            "source": describe(self.url),
            "created-at": created.isoformat(),
            "schema-version": "" if version is None else str(version),
        }
        upload = self._s3(
            "start the upload",
            self.client.create_multipart_upload,
            Bucket=self.bucket,
            Key=key,
            ContentType="application/octet-stream",
            Metadata=metadata,
            **encryption,
        )
        upload_id = upload["UploadId"]
        try:
            size, digest = self._stream(program, key, upload_id)
        except BaseException:
            self._abort(key, upload_id)
            raise
        head = self._s3("check the object", self.client.head_object, Bucket=self.bucket, Key=key)
        if int(head["ContentLength"]) != size:
            raise DrError(
                f"s3://{self.bucket}/{key} holds {head['ContentLength']} bytes, sent {size}"
            )
        manifest = Manifest(
            key=key,
            size=size,
            sha256=digest,
            created_at=created.isoformat(),
            source=describe(self.url),
            database=database,
            schema_version=version,
            pg_dump_version=_pg_dump_version(program),
            encryption=str(head.get("ServerSideEncryption", "")),
        )
        self._s3(
            "write the manifest",
            self.client.put_object,
            Bucket=self.bucket,
            Key=manifest.manifest_key,
            Body=manifest.to_json().encode(),
            ContentType="application/json",
            **encryption,
        )
        return manifest

    def _stream(self, program: str, key: str, upload_id: str) -> tuple[int, str]:
        sha = hashlib.sha256()
        parts: list[dict[str, Any]] = []
        size = 0
        command = [
            program,
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--dbname={self.url}",
        ]
        process = subprocess.Popen(  # noqa: S603 - fixed program, no shell
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(self.password),
        )
        assert process.stdout is not None
        assert process.stderr is not None
        errors = StderrTail(process.stderr)
        drained = False
        try:
            while part := _read_part(process.stdout, self.part_size):
                sha.update(part)
                size += len(part)
                number = len(parts) + 1
                answer = self._s3(
                    f"upload part {number}",
                    self.client.upload_part,
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=part,
                )
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            drained = True
        finally:
            if not drained:
                # S3 failed mid-stream: pg_dump would block on the full pipe forever.
                process.kill()
            process.stdout.close()
            returncode = process.wait()
        if returncode != 0:
            raise DrError(
                f"pg_dump of {describe(self.url)} failed (exit {returncode}): {errors.reason()}"
            )
        if not parts:
            raise DrError(f"pg_dump of {describe(self.url)} produced no output")
        self._s3(
            "complete the upload",
            self.client.complete_multipart_upload,
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )
        return size, sha.hexdigest()

    def _abort(self, key: str, upload_id: str) -> None:
        # On failure here the bucket's lifecycle rule removes the abandoned upload.
        with contextlib.suppress(ClientError, BotoCoreError):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def _s3(self, action: str, call: Any, **kwargs: Any) -> Any:
        try:
            return call(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise DrError(
                f"S3 refused to {action} in s3://{self.bucket}: {code}",
                retryable=code not in PERMANENT_S3_ERRORS,
            ) from None
        except BotoCoreError as exc:
            raise DrError(f"cannot reach S3 to {action}: {exc}") from None
