"""Files at ``s3://bucket/key`` locations (any S3-compatible object store).

Bytes are never proxied by the node: tickets and data URLs hand out
presigned GET URLs (valid for any ``Range``). To compute a ticket the node
reads the index and a few BGZF blocks (header, chunk boundaries) with ranged
GETs, through ``RangeFile``, which fetches read-ahead windows.

``version()`` is the size and modification time recorded at registration:
asking the store (a HEAD request) would cost a round trip on every ticket of
a warm cache. ``stat()`` asks it.
"""

from __future__ import annotations

import functools
import threading
from typing import BinaryIO
from urllib.parse import urlsplit

from server.errors import ServiceError
from server.genomics.coords import range_header
from server.settings import Settings
from server.storage.base import SizedReader, Stat, Storage

READ_AHEAD = 256 * 1024


def parse(location: str) -> tuple[str, str]:
    parts = urlsplit(location)
    if parts.scheme != "s3" or not parts.netloc or not parts.path.strip("/"):
        raise ValueError(f"not an s3://bucket/key location: {location!r}")
    return parts.netloc, parts.path.lstrip("/")


_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8)
def _client(endpoint: str, region: str, access_key: str, secret_key: str):
    try:
        import boto3
        from botocore.config import Config
    except ImportError:  # pragma: no cover - depends on the install
        raise ServiceError("files on S3 need boto3 (pip install boto3)") from None
    return boto3.client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=region,
        aws_access_key_id=access_key or None,
        aws_secret_access_key=secret_key or None,
        config=Config(
            signature_version="s3v4", retries={"max_attempts": 3}, s3={"addressing_style": "path"}
        ),
    )


def client(settings: Settings):
    with _LOCK:
        return _client(
            settings.s3_endpoint_url,
            settings.s3_region,
            settings.s3_access_key,
            settings.s3_secret_key,
        )


def presign(settings: Settings, location: str, ttl: int | None = None) -> str:
    """A presigned GET URL for the object, valid ``ttl`` seconds (default: data_url_ttl)."""
    bucket, key = parse(location)
    return client(settings).generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": key},
        ExpiresIn=settings.data_url_ttl if ttl is None else ttl,
    )


def _error(exc: Exception) -> Exception:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    if code in ("NoSuchKey", "404", "NoSuchBucket", "NotFound"):
        return FileNotFoundError("a registered object is missing from object storage")
    return ServiceError(f"object storage error ({code or type(exc).__name__})")


class S3Storage(Storage):
    def __init__(self, settings: Settings, location: str, registered: Stat | None = None):
        self.bucket, self.key = parse(location)
        self.settings, self.location, self.registered = settings, location, registered

    def _get(self, **kwargs) -> bytes:
        try:
            resp = client(self.settings).get_object(Bucket=self.bucket, Key=self.key, **kwargs)
            return resp["Body"].read()
        except Exception as exc:  # noqa: BLE001 - botocore raises many kinds
            if getattr(exc, "response", {}).get("Error", {}).get("Code") == "InvalidRange":
                return b""  # at or past the end
            raise _error(exc) from None

    def read(self, offset: int, length: int) -> bytes:
        return self._get(Range=range_header(offset, offset + length)) if length > 0 else b""

    def read_all(self) -> bytes:
        return self._get()

    def open(self) -> BinaryIO:
        size = self.registered.size if self.registered and self.registered.size else None
        return RangeFile(self, size if size is not None else self.stat().size)

    def stat(self) -> Stat:
        try:
            head = client(self.settings).head_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:  # noqa: BLE001
            raise _error(exc) from None
        return Stat(int(head["ContentLength"]), int(head["LastModified"].timestamp() * 1e9))

    def version(self) -> Stat:
        if self.registered is not None and self.registered.size:
            return self.registered
        return self.stat()

    def presigned_url(self, ttl: int) -> str:
        return presign(self.settings, self.location, ttl)


class RangeFile(SizedReader):
    """A read-only, seekable view of an object, fetched in read-ahead windows."""

    def __init__(self, store: S3Storage, size: int):
        self.store, self.size = store, size
        self.pos = 0
        self.buf_start = 0
        self.buf = b""

    def _read(self, n: int) -> bytes:
        if n == 0:
            return b""
        end = self.pos + n
        if not (self.buf_start <= self.pos and end <= self.buf_start + len(self.buf)):
            self.buf_start = self.pos
            self.buf = self.store.read(self.pos, max(n, READ_AHEAD))
        return self.buf[self.pos - self.buf_start : end - self.buf_start]


# ---------------------------------------------------------------- multipart uploads
# The inbox on object storage: submitters PUT parts straight to presigned URLs,
# so the node never carries the bytes; it starts, lists and completes the upload.
PART_SIZE = 8 << 20  # bytes per part (S3: at least 5 MiB, except the last)


def multipart_start(settings: Settings, location: str) -> str:
    bucket, key = parse(location)
    try:
        return client(settings).create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    except Exception as exc:  # noqa: BLE001
        raise _error(exc) from None


def multipart_part_url(
    settings: Settings, location: str, upload_id: str, number: int, ttl: int
) -> str:
    bucket, key = parse(location)
    return client(settings).generate_presigned_url(
        "upload_part",
        Params={"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
        ExpiresIn=ttl,
    )


def multipart_parts(settings: Settings, location: str, upload_id: str) -> list[dict]:
    """The parts received so far: ``{"PartNumber", "ETag", "Size"}``, in order."""
    bucket, key = parse(location)
    parts: list[dict] = []
    marker = 0
    try:
        while True:
            resp = client(settings).list_parts(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
            )
            parts += resp.get("Parts", [])
            if not resp.get("IsTruncated"):
                return sorted(parts, key=lambda p: p["PartNumber"])
            marker = resp["NextPartNumberMarker"]
    except Exception as exc:  # noqa: BLE001
        raise _error(exc) from None


def multipart_complete(settings: Settings, location: str, upload_id: str, parts: list[dict]):
    bucket, key = parse(location)
    try:
        client(settings).complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]
            },
        )
    except Exception as exc:  # noqa: BLE001
        raise _error(exc) from None


def delete(settings: Settings, location: str, upload_id: str = "") -> None:
    """Remove the object (and abort its multipart upload, if one is open)."""
    bucket, key = parse(location)
    s3 = client(settings)
    try:
        if upload_id:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception:  # noqa: BLE001, S110 - already completed or aborted
        pass
    try:
        s3.delete_object(Bucket=bucket, Key=key)
    except Exception as exc:  # noqa: BLE001
        raise _error(exc) from None
