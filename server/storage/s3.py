"""Files at ``s3://bucket/key`` locations (any S3-compatible object store).

Bytes are never proxied by the node: tickets and data URLs hand out
presigned GET URLs (valid for any ``Range``). To compute a ticket the node
reads the index and a few BGZF blocks (header, chunk boundaries) with ranged
GETs; the parsed result is cached like a local file's, keyed by the location
and the size and modification time recorded at registration.
"""

from __future__ import annotations

import functools
import io
import threading
from pathlib import Path
from urllib.parse import urlsplit

from server.errors import NotFound, ServiceError
from server.genomics.coords import range_header
from server.settings import Settings

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


def _error(exc: Exception, location: str) -> Exception:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    if code in ("NoSuchKey", "404", "NoSuchBucket", "NotFound"):
        return NotFound("a registered object is missing from object storage")
    return ServiceError(f"object storage error ({code or type(exc).__name__})")


def read_range(settings: Settings, location: str, start: int, length: int) -> bytes:
    bucket, key = parse(location)
    try:
        resp = client(settings).get_object(
            Bucket=bucket, Key=key, Range=range_header(start, start + length)
        )
        return resp["Body"].read()
    except Exception as exc:  # noqa: BLE001 - botocore raises many kinds
        if getattr(exc, "response", {}).get("Error", {}).get("Code") == "InvalidRange":
            return b""
        raise _error(exc, location) from None


def read_all(settings: Settings, location: str) -> bytes:
    bucket, key = parse(location)
    try:
        return client(settings).get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:  # noqa: BLE001
        raise _error(exc, location) from None


class RangeFile(io.RawIOBase):
    """A read-only, seekable view of an object, fetched in read-ahead windows."""

    def __init__(self, settings: Settings, location: str, size: int):
        self.settings, self.location, self.size = settings, location, size
        self.pos = 0
        self.buf_start = 0
        self.buf = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, max(0, self.size - self.pos))
        if n == 0:
            return b""
        end = self.pos + n
        if not (self.buf_start <= self.pos and end <= self.buf_start + len(self.buf)):
            self.buf_start = self.pos
            self.buf = read_range(self.settings, self.location, self.pos, max(n, READ_AHEAD))
        out = self.buf[self.pos - self.buf_start : end - self.buf_start]
        self.pos += len(out)
        return out


def open_indexed(settings: Settings, datafile):
    """The ``IndexedFile`` of a registered S3 object (cached like a local one)."""
    from server.genomics import slices

    location, index_location = datafile.location, datafile.index_location
    if not index_location.startswith("s3://"):
        raise ServiceError("an object on S3 needs its index on S3")
    size = _size(datafile, settings)
    key = (
        location,
        size,
        getattr(datafile, "mtime_ns", 0),
        index_location,
        datafile.format.upper(),
    )

    def make():
        names = None
        if datafile.format.upper() == "CRAM":
            names = _cram_names(RangeFile(settings, location, size))
        try:
            return slices.IndexedFile(
                location,
                datafile.format.upper(),
                index_location,
                datafile.index_format.upper(),
                size,
                opener=lambda: RangeFile(settings, location, size),
                index_raw=read_all(settings, index_location),
                names=names,
            )
        except slices.SliceError as exc:
            raise ServiceError(f"cannot cut the file: {exc}") from None

    return slices.open_with(key, make)


def _size(datafile, settings: Settings) -> int:
    size = getattr(datafile, "size", 0) or 0
    if size:
        return size
    bucket, key = parse(datafile.location)
    try:
        return int(client(settings).head_object(Bucket=bucket, Key=key)["ContentLength"])
    except Exception as exc:  # noqa: BLE001
        raise _error(exc, datafile.location) from None


def _cram_names(fh) -> list[str]:
    """Reference names from a CRAM's header container, read through ``fh``.

    Only the header bytes are fetched; they are parsed from a private temporary
    file (htslib, given a remote URL, would download the index into the
    working directory).
    """
    import tempfile

    import pysam

    from server.genomics import cram

    major, end = cram.header_end(fh)
    fh.seek(0)
    head = fh.read(end)
    with tempfile.TemporaryDirectory(prefix="genomeport-cram-") as tmp:
        path = Path(tmp) / "header.cram"
        path.write_bytes(head + cram.eof_container(major))
        save = pysam.set_verbosity(0)
        try:
            with pysam.AlignmentFile(str(path), "rc", check_sq=False) as cf:
                return list(cf.references)
        finally:
            pysam.set_verbosity(save)
