"""The inbox: submitters deliver Crypt4GH files for the node's key.

A submitter (a caller holding the ``submitter`` role on the dataset, see
``server.auth.roles``) opens an upload with the file's name, size and the
sha-256 of its encrypted bytes, sends the bytes in chunks at increasing
offsets (each ``PUT`` names its offset; a chunk at any other offset than the
bytes received so far is refused with the offset to resume from, so an
interrupted transfer resumes where the node's copy ends), then completes
it. Completion compares size and checksum with the declaration: a mismatch
rejects the upload and removes its bytes; a match queues it for the ingest
pipeline (``server.inbox.ingest``). An index is an upload of its own
(``kind: index``) named by its data upload.

The node never sees plaintext here: the inbox holds what the submitter
encrypted. Every step is audited (api ``inbox``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from server.auth import Caller, check_token
from server.auth.audit import append
from server.auth.roles import has_role
from server.db import Database
from server.errors import (
    Conflict,
    InvalidAuthentication,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
)
from server.inbox.tables import InboxUpload
from server.settings import Settings

KINDS = ("data", "index")


@dataclass
class Context:
    settings: Settings
    db: Database
    caller: Caller


def audit(db: Database, caller: str, action: str, query: dict, **columns) -> None:
    """One audit row of the inbox (its API, the ingest and the operator commands);
    ``columns`` are ``append``'s others (``outcome`` granted unless given)."""
    columns = {"outcome": "granted"} | columns
    append(db, caller=caller, api="inbox", action=action, query=query, **columns)


def _audit(
    ctx: Context,
    action: str,
    row: InboxUpload | None,
    outcome: str = "granted",
    *,
    status: int = 200,
    dataset_id: str = "",
    **query,
) -> None:
    dataset_id, object_id = (dataset_id, "") if row is None else (row.dataset_id, row.id)
    where = {"dataset_id": dataset_id, "object_id": object_id}
    audit(ctx.db, ctx.caller.label, action, query, outcome=outcome, status=status, **where)


def _submitter(ctx: Context, dataset_id: str) -> None:
    """401 without a valid token, 403 without the submitter role (audited)."""
    check_token(ctx.caller)
    if not ctx.caller.authenticated:
        _audit(ctx, "upload.create", None, "denied", status=401, dataset_id=dataset_id)
        raise InvalidAuthentication("uploads need a bearer token")
    if not has_role(ctx.db, ctx.caller, dataset_id, "submitter"):
        _audit(ctx, "upload.create", None, "denied", status=403, dataset_id=dataset_id)
        raise PermissionDenied(f"you are not a submitter of dataset {dataset_id!r}")


def render(row: InboxUpload) -> dict:
    out = {
        "id": row.id,
        "dataset": row.dataset_id,
        "filename": row.filename,
        "kind": row.kind,
        "size": int(row.declared_size),
        "sha256": row.declared_sha256,
        "received": int(row.received),
        "state": row.state,
    }
    optional = {
        "index": row.index_upload,
        "reason": row.reason,
        "accession": row.accession,
        "object_id": row.object_id,
        "beacon": row.beacon,
        "beacon_state": row.beacon_state,
    }
    return out | {key: value for key, value in optional.items() if value}


PART_URL_TTL = 3600  # seconds a presigned part URL stays valid (GET the upload for new ones)


def on_object_storage(settings: Settings) -> bool:
    from server.storage import is_local

    return bool(settings.inbox_dir) and not is_local(settings.inbox_dir)


def inbox_path(settings: Settings, dataset_id: str, upload_id: str) -> Path:
    return Path(settings.effective_inbox_dir) / dataset_id / f"{upload_id}.c4gh"


def inbox_location(settings: Settings, dataset_id: str, upload_id: str) -> str:
    if on_object_storage(settings):
        return f"{settings.inbox_dir.rstrip('/')}/{dataset_id}/{upload_id}.c4gh"
    return str(inbox_path(settings, dataset_id, upload_id))


def _multipart(settings: Settings, row: InboxUpload, out: dict) -> dict:
    """An S3 inbox upload: parts received, and presigned URLs for the missing ones."""
    from server.storage import s3

    size = int(row.declared_size)
    count = max(1, -(-size // s3.PART_SIZE))
    have = {}
    if row.state == "uploading":
        have = {
            p["PartNumber"]: int(p["Size"])
            for p in s3.multipart_parts(settings, row.location, row.multipart_id)
        }
        out["received"] = sum(have.values())
    out["multipart"] = {
        "part_size": s3.PART_SIZE,
        "parts": [
            {
                "part_number": n,
                "url": s3.multipart_part_url(
                    settings, row.location, row.multipart_id, n, PART_URL_TTL
                ),
            }
            for n in range(1, count + 1)
            if n not in have and row.state == "uploading"
        ],
    }
    return out


# ---------------------------------------------------------------- create
# what an upload may be called, and what its declared checksum must look like
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.c4gh$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# what a file loaded into the Beacon is named (before .c4gh): a VCF or BCF
BEACON_SUFFIXES = (".vcf.gz", ".vcf.bgz", ".bcf")


def check_beacon_upload(filename: str, kind: str) -> None:
    """Refuse ``beacon: true`` on an upload that cannot hold variants."""
    if kind != "data":
        raise InvalidInput("beacon: true is for a data upload (a VCF or BCF), not for an index")
    stem = filename[: -len(".c4gh")].lower()
    if stem.endswith(BEACON_SUFFIXES):
        return
    what = next(
        (f"a {fmt}" for ext, fmt in ((".bam", "BAM"), (".cram", "CRAM")) if stem.endswith(ext)),
        "not named as a VCF or BCF",
    )
    raise InvalidInput(
        f"beacon: true loads genotypes into the Beacon, from a VCF or BCF file named "
        f"*.vcf.gz.c4gh, *.vcf.bgz.c4gh or *.bcf.c4gh; {filename} is {what}. Upload it "
        "without beacon (alignments are served by htsget, not the Beacon)"
    )


def create_upload(ctx: Context, body: dict) -> dict:
    from server.registry import check_id

    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    dataset_id = body.get("dataset")
    if not isinstance(dataset_id, str) or not dataset_id:
        raise InvalidInput("dataset is required")
    _submitter(ctx, dataset_id)
    filename = body.get("filename")
    if not isinstance(filename, str) or not _FILENAME.match(filename):
        raise InvalidInput(
            "filename must be a plain file name ending in .c4gh (letters, digits, '.', '_', '-')"
        )
    size = body.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise InvalidInput("size must be a positive integer (bytes of the encrypted file)")
    if size > ctx.settings.inbox_max_upload_bytes:
        raise PayloadTooLarge(f"uploads are at most {ctx.settings.inbox_max_upload_bytes} bytes")
    sha = body.get("sha256")
    if not isinstance(sha, str) or not _SHA256.match(sha.lower()):
        raise InvalidInput("sha256 must be the 64 hex digits of the encrypted file's sha-256")
    kind = body.get("kind", "data")
    if kind not in KINDS:
        raise InvalidInput("kind must be 'data' or 'index'")
    object_id = body.get("object_id") or ""
    if object_id:
        check_id(object_id, "object id")
    beacon = body.get("beacon", False)
    if not isinstance(beacon, bool):
        raise InvalidInput("beacon must be true or false")
    if beacon:
        check_beacon_upload(filename, kind)
    index_id = body.get("index") or ""
    upload_id = uuid.uuid4().hex
    with ctx.db.session() as session:
        if index_id:
            if kind != "data":
                raise InvalidInput("only a data upload names an index")
            index = session.scalar(sa.select(InboxUpload).where(InboxUpload.id == index_id))
            if (
                index is None
                or index.submitter != ctx.caller.label
                or index.kind != "index"
                or index.dataset_id != dataset_id
            ):
                raise InvalidInput(f"no index upload {index_id!r} of yours in this dataset")
        path = inbox_location(ctx.settings, dataset_id, upload_id)
        multipart = ""
        if on_object_storage(ctx.settings):
            from server.storage import s3

            multipart = s3.multipart_start(ctx.settings, path)
        row = InboxUpload(
            id=upload_id,
            dataset_id=dataset_id,
            submitter=ctx.caller.label,
            filename=filename,
            kind=kind,
            index_upload=index_id,
            object_id=object_id,
            beacon=beacon,
            declared_size=size,
            declared_sha256=sha.lower(),
            received=0,
            location=path,
            multipart_id=multipart,
            state="uploading",
        )
        session.add(row)
        session.flush()
        out = render(row)
        if multipart:
            out = _multipart(ctx.settings, row, out)
    if not multipart:
        local = Path(path)
        local.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(local, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
    _audit(ctx, "upload.create", row, filename=filename, size=size, kind=kind)
    return out


# ---------------------------------------------------------------- own uploads
def _own(ctx: Context, session, upload_id: str) -> InboxUpload:
    check_token(ctx.caller)
    row = session.scalar(sa.select(InboxUpload).where(InboxUpload.id == upload_id))
    if row is None or not ctx.caller.authenticated or row.submitter != ctx.caller.label:
        raise NotFound(f"no upload {upload_id!r}")  # another submitter's is not disclosed
    return row


def get_upload(ctx: Context, upload_id: str) -> dict:
    with ctx.db.session() as session:
        row = _own(ctx, session, upload_id)
        out = render(row)
        if row.multipart_id:
            out = _multipart(ctx.settings, row, out)
        return out


def list_uploads(ctx: Context) -> list[dict]:
    check_token(ctx.caller)
    if not ctx.caller.authenticated:
        raise InvalidAuthentication("listing uploads needs a bearer token")
    with ctx.db.session() as session:
        rows = session.scalars(
            sa.select(InboxUpload)
            .where(InboxUpload.submitter == ctx.caller.label)
            .order_by(InboxUpload.pk)
        )
        return [render(r) for r in rows]


# ---------------------------------------------------------------- chunks
def put_chunk(ctx: Context, upload_id: str, offset: int, data: bytes) -> dict:
    """Write ``data`` at ``offset``, which must be the bytes received so far."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput("offset must be a non-negative integer")
    if not data:
        raise InvalidInput("empty chunk")
    if len(data) > ctx.settings.inbox_max_chunk_bytes:
        raise PayloadTooLarge(f"chunks are at most {ctx.settings.inbox_max_chunk_bytes} bytes")
    with ctx.db.session() as session:
        row = _own(ctx, session, upload_id)
        if row.state != "uploading":
            raise Conflict(f"upload {upload_id} is {row.state}, not uploading")
        if row.multipart_id:
            raise Conflict(
                "this upload goes straight to object storage: PUT its parts to the presigned "
                "URLs of GET /inbox/uploads/{id}"
            )
        if not has_role(ctx.db, ctx.caller, row.dataset_id, "submitter"):
            raise PermissionDenied(f"you are no longer a submitter of {row.dataset_id!r}")
        path, declared = Path(row.location), int(row.declared_size)
    if offset + len(data) > declared:
        raise InvalidInput(f"the chunk ends past the declared size ({declared} bytes)")
    fd = os.open(path, os.O_WRONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # one writer per upload, across processes
        with ctx.db.session() as session:
            row = session.scalar(
                sa.select(InboxUpload).where(InboxUpload.id == upload_id).with_for_update()
            )
            received = int(row.received)
            if row.state != "uploading":
                raise Conflict(f"upload {upload_id} is {row.state}, not uploading")
            if offset != received:
                err = Conflict(
                    f"the node has {received} bytes of this upload; send the chunk at "
                    f"offset {received}"
                )
                err.detail = {"received": received}
                raise err
            os.ftruncate(fd, offset)  # drop what a failed earlier write left past it
            view = memoryview(data)
            pos = offset
            while view:
                n = os.pwrite(fd, view, pos)
                view, pos = view[n:], pos + n
            os.fsync(fd)
            row.received = offset + len(data)
            out = render(row)
    finally:
        os.close(fd)
    return out


# ---------------------------------------------------------------- complete
def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def _complete_multipart(ctx: Context, row: InboxUpload) -> None:
    from server.storage import s3

    parts = s3.multipart_parts(ctx.settings, row.location, row.multipart_id)
    received = sum(int(p["Size"]) for p in parts)
    if received != int(row.declared_size):
        raise InvalidInput(
            f"object storage has {received} of {row.declared_size} bytes; send the missing parts"
        )
    s3.multipart_complete(ctx.settings, row.location, row.multipart_id, parts)
    row.received = received


def _hash_location(settings: Settings, location: str) -> str:
    from server.storage import for_location, is_local

    if is_local(location):
        return file_sha256(Path(location))
    sha = hashlib.sha256()
    with for_location(location, settings, raw=True).open() as fh:
        while chunk := fh.read(4 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def remove_bytes(settings: Settings, row: InboxUpload) -> None:
    from server.storage import is_local

    if is_local(row.location):
        Path(row.location).unlink(missing_ok=True)
    else:
        from server.storage import s3

        s3.delete(settings, row.location, row.multipart_id if row.state == "uploading" else "")


def complete(ctx: Context, upload_id: str) -> dict:
    """Check size and checksum; queue the upload (or reject it and drop its bytes)."""
    with ctx.db.session() as session:
        row = _own(ctx, session, upload_id)
        if row.state != "uploading":
            raise Conflict(f"upload {upload_id} is {row.state}, not uploading")
        if row.multipart_id:
            _complete_multipart(ctx, row)
        if int(row.received) != int(row.declared_size):
            raise InvalidInput(
                f"the node has {row.received} of {row.declared_size} bytes; send the rest first"
            )
        if row.index_upload:
            index = session.scalar(sa.select(InboxUpload).where(InboxUpload.id == row.index_upload))
            if index is None or index.state != "received":
                raise InvalidInput("complete the index upload first")
        declared = row.declared_sha256
    actual = _hash_location(ctx.settings, row.location)
    with ctx.db.session() as session:
        row = session.scalar(
            sa.select(InboxUpload).where(InboxUpload.id == upload_id).with_for_update()
        )
        if row.state != "uploading":
            raise Conflict(f"upload {upload_id} is {row.state}, not uploading")
        if actual != declared:
            row.state = "rejected"
            row.reason = (
                f"checksum mismatch: the declared sha-256 is {declared[:16]}..., the bytes "
                f"received hash to {actual[:16]}...; upload the file again"
            )
        else:
            row.state = "queued" if row.kind == "data" else "received"
        out = render(row)
    if out["state"] == "rejected":
        remove_bytes(ctx.settings, row)
        _audit(ctx, "upload.complete", row, "error", status=400, reason="checksum mismatch")
        err = InvalidInput(out["reason"])
        raise err
    _audit(ctx, "upload.complete", row, state=out["state"])
    return out
