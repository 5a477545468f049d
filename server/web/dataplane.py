"""The data plane: bytes of registered files behind short-lived signed URLs.

``DataPlane`` is a plain ASGI app mounted beside Connexion (``server.web.app``
sends every path under ``/data/`` to it), so bulk data never goes through the
Flask adapter. It answers ``GET``/``HEAD``/``OPTIONS``. A URL is
``/data/<kind>/<ident>?who=<caller>&exp=<unix time>&sig=<HMAC>``, made by
``server.auth.urls.sign_url``; only the holder of the URL can read it until it
expires (never the caller's bearer token). ``Range`` is honoured (206 with an
exact Content-Length, 416 out of range) and bodies are streamed in bounded
chunks, or handed to the kernel (``sendfile``) when the server offers the ASGI
``http.response.zerocopysend`` extension, as ``genomeport serve`` does
(``server.web.accel.zerocopy``; ``GENOMEPORT_ACCEL`` without ``zerocopy``
turns it off).

A URL lives as long as the grant behind it, never longer: ``exp`` is the
earliest of ``GENOMEPORT_DATA_URL_TTL`` and the ``expires`` the API passes
(``server.auth.access_expires``: the token's and every used visa's expiry).
``who`` is the caller's label (``issuer|sub``, not a credential), covered by the
signature, so each download is audited under the caller the grant was
decided for. Revocation: a grant revoked before its visa expires is closed
by the checks in ``GRANT_CHECKS``, run at serve time with the caller's label
and the dataset: ``server.auth.access.grant_check`` refuses the URLs of a
caller whose DAC grants on the dataset were all revoked or have expired
(cached at most ``GENOMEPORT_ACCESS_CACHE_SECONDS``).

Every ``GET``/``HEAD`` is audited after the response (api ``data``): caller,
object, byte range, status and bytes handed to the server, refusals too (bad
or expired signature, 404, 416, a changed file); never the query string or
the signature. A file whose size or modification time differ from the
registered ones (one ``fstat`` of the open file) is refused with 503
``DataChanged``.

What a URL names is found by the resolver of its kind in ``RESOLVERS``, one
table: ``fn(settings, db, ident)`` returning a ``Target`` (or a bare path).
``file`` and ``index`` map a ``DataFile.pk`` to its file or its index, with the
registered size and mtime; ``wes`` maps a run's log or output to its file. A
location the node does not serve itself (``server.storage``: an object on S3)
is answered with a redirect to the store's presigned URL.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

import cachetools

from server import errors, storage
from server.auth.access import grant_check
from server.auth.urls import ANONYMOUS, PREFIX, WHO, check_expiry, check_kind, check_signature
from server.genomics.coords import exclusive_end, inclusive_end
from server.logging import request_id_var
from server.settings import Settings
from server.storage import Stat
from server.web.errors import error_body

logger = logging.getLogger(__name__)

CHUNK = 4 << 20  # bytes per read and per ASGI message
ZEROCOPY = "http.response.zerocopysend"  # ASGI extension (server.web.accel.zerocopy)


@dataclass(frozen=True)
class Target:
    """What a data URL names: its location, and what audits and checks it."""

    location: Path | str
    object_id: str = ""
    dataset_id: str = ""
    size: int | None = None  # registered size; None: not checked (e.g. a growing log)
    mtime_ns: int | None = None  # registered mtime; None or 0: not checked
    audit: dict = field(default_factory=dict)  # extra fields for the audit row
    raw: bool = False  # a Crypt4GH file's ciphertext as stored (kind c4gh)
    header: bytes = b""  # kind c4ghkey: a header for the client replacing the archived one


Resolver = Callable[[Settings, object, str], "Target | Path | str"]
GrantCheck = Callable[[Settings, object, str, str], None]
CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (
        b"access-control-expose-headers",
        b"Content-Length, Content-Range, Accept-Ranges, Content-Type",
    ),
]
PREFLIGHT_HEADERS = [
    (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
    (b"access-control-allow-headers", b"Range, Authorization, Content-Type, X-Request-ID"),
    (b"access-control-max-age", b"600"),
]


# ---------------------------------------------------------------- resolvers
def _datafile_resolver(index: bool) -> Resolver:
    def resolve(settings: Settings, db, ident: str) -> Target:
        from server.db.tables import DataFile

        try:
            pk = int(ident)
        except ValueError:
            raise errors.NotFound("no such data file") from None
        with db.session() as session:
            row = session.get(DataFile, pk)
            if row is None:
                raise errors.NotFound("no such data file")
            location = row.index_location if index else row.location
            if not location:
                raise errors.NotFound("no such data file")
            size = row.index_size if index else row.size
            mtime = row.index_mtime_ns if index else row.mtime_ns
            fmt = row.index_format if index else row.format
            return Target(
                location,
                object_id=row.object_id,
                dataset_id=row.dataset_id,
                size=int(size),
                mtime_ns=int(mtime or 0) or None,
                audit={"format": fmt},
            )

    return resolve


def _c4gh_resolver(settings: Settings, db, ident: str) -> Target:
    """An archived Crypt4GH file's ciphertext, for C4GH tickets (never its plaintext)."""
    target = _datafile_resolver(False)(settings, db, ident)
    if not storage.is_crypt4gh(str(target.location)):
        raise errors.NotFound("no such data file")
    return Target(
        target.location,
        object_id=target.object_id,
        dataset_id=target.dataset_id,
        mtime_ns=target.mtime_ns,
        audit={**target.audit, "encryption": "C4GH"},
        raw=True,
    )


def _c4gh_for_client(settings: Settings, db, ident: str) -> Target:
    """``<pk>.<header>``: an archived file behind a header made for a client's key
    (DRS with ``client-public-key``); the header is in the signed URL itself, so
    every ranged request of one URL sees the same bytes."""
    import base64
    import binascii

    pk, _, encoded = ident.partition(".")
    try:
        header = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (ValueError, binascii.Error):
        raise errors.NotFound("no such data file") from None
    target = _c4gh_resolver(settings, db, pk)
    return Target(
        target.location,
        object_id=target.object_id,
        dataset_id=target.dataset_id,
        mtime_ns=target.mtime_ns,
        audit={**target.audit, "client_key": True},
        raw=True,
        header=header,
    )


def _plaintext_resolver(index: bool) -> Resolver:
    """``file``/``index``: refused for a dataset that requires encrypted transfer."""
    inner = _datafile_resolver(index)

    def resolve(settings: Settings, db, ident: str) -> Target:
        target = inner(settings, db, ident)
        if storage.is_crypt4gh(str(target.location)):
            from server.htsget.crypt4gh import requires_encryption

            if requires_encryption(db, target.dataset_id):
                raise errors.PermissionDenied("this dataset is served encrypted only")
        return target

    return resolve


def _wes_file(settings: Settings, db, ident: str) -> Path:
    from server.wes.service import resolve_file

    return resolve_file(settings, db, ident)


# Checks run before serving each URL, ``fn(settings, db, caller_label, dataset_id)``;
# one raises ``PermissionDenied`` to close the URLs of a revoked grant:
# ``server.auth.access.grant_check`` closes those of a revoked or expired DAC grant.
GRANT_CHECKS: tuple[GrantCheck, ...] = (grant_check,)

# kind -> resolver: what /data/<kind>/<ident> serves. A kind signed by an API
# (server.auth.urls.sign_url) and missing here is a 404, never a guess.
RESOLVERS: dict[str, Resolver] = {
    "file": _plaintext_resolver(False),
    "index": _plaintext_resolver(True),
    "c4gh": _c4gh_resolver,  # Crypt4GH ciphertext as archived (C4GH tickets)
    "c4ghkey": _c4gh_for_client,  # the same behind a client's header (DRS)
    "wes": _wes_file,  # WES run logs and outputs, handed only to the run's owner
}
for _kind in RESOLVERS:
    check_kind(_kind)


# -------------------------------------------------------------- range logic
def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``bytes=a-b`` into ``(start, end_exclusive)``; None to serve the whole file.

    Raises ``RangeNotSatisfiable`` for a range that lies past the end.
    """
    header = header.strip()
    if not header.lower().startswith("bytes="):
        return None
    spec = header[6:].strip()
    if "," in spec:  # several ranges: serve the whole representation (RFC 9110 allows it)
        return None
    first, sep, last = spec.partition("-")
    first, last = first.strip(), last.strip()
    if (
        not sep
        or not (first.isdigit() or last.isdigit())
        or (first and not first.isdigit())
        or (last and not last.isdigit())
    ):
        return None
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise errors.RangeNotSatisfiable("empty suffix range", detail={"size": size})
        return max(0, size - n), size
    start = int(first)
    end = exclusive_end(int(last)) if last else size
    if last and end <= start:
        return None  # syntactically invalid: ignore
    if start >= size:
        raise errors.RangeNotSatisfiable(
            f"range starts at {start}, past the end ({size} bytes)", detail={"size": size}
        )
    return start, min(end, size)


def _ranged(scope, record: _Download, size: int, *extra: tuple[bytes, bytes]):
    """The status, ``start``, ``end`` and headers of a response to the request's
    Range header over ``size`` bytes (the whole file without one), recorded in
    ``record``; ``extra`` headers follow the content ones."""
    headers = dict((k.lower(), v) for k, v in scope.get("headers", []))
    rng = parse_range(headers.get(b"range", b"").decode("latin-1"), size)
    status, start, end = (200, 0, size) if rng is None else (206, rng[0], rng[1])
    record.start, record.end = start, end
    out = [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", str(end - start).encode()),
        (b"accept-ranges", b"bytes"),
        *extra,
    ]
    if status == 206:
        out.append((b"content-range", f"bytes {start}-{inclusive_end(end)}/{size}".encode()))
    return status, start, end, out


async def _start(send, status: int, headers: list, *, head: bool) -> bool:
    """Send the response's status and headers; for a HEAD request also its empty
    body, and say so (True: nothing more to send)."""
    await send({"type": "http.response.start", "status": status, "headers": headers + CORS_HEADERS})
    if head:
        await send({"type": "http.response.body", "body": b""})
    return head


def _advise(fd: int, offset: int, length: int, *, sequential: bool = False) -> None:
    if not hasattr(os, "posix_fadvise"):
        return
    try:
        if sequential:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass


# -------------------------------------------------------------- middleware
class DataPlane:
    """The ASGI app serving ``/data/...`` (mounted beside Connexion by ``server.web.app``).

    ``zerocopy=False`` streams every body even where the server offers
    ``http.response.zerocopysend`` (``GENOMEPORT_ACCEL`` without ``zerocopy``).
    """

    def __init__(self, settings: Settings, db=None, *, zerocopy: bool = True):
        self.settings = settings
        self.db = db
        self.zerocopy = zerocopy
        # (kind, ident) -> Target for 10 s; cachetools caches are not thread-safe
        self._cache = cachetools.TTLCache(maxsize=4096, ttl=10)
        self._cache_lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return  # lifespan and websockets are the outer app's business
        method = scope.get("method", "GET")
        record = _Download(method, request_id_var.get())
        started = False

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                record.status = message["status"]
            await send(message)

        try:
            if method == "OPTIONS":
                record = None  # a preflight reads nothing: not audited
                await self._respond(
                    send, 204, PREFLIGHT_HEADERS + [(b"allow", b"GET, HEAD, OPTIONS")]
                )
                return
            if method not in ("GET", "HEAD"):
                err = errors.InvalidInput("method not allowed on data URLs")
                err.status = 405
                raise err
            await self._serve(scope, tracked_send, record, head=method == "HEAD")
        except errors.ServiceError as exc:
            if record is not None:
                record.fail(exc)
            if started:
                raise
            await self._error(scope, send, exc)
        except Exception:  # noqa: BLE001 - answer in the API's error shape when still possible
            logger.exception("data plane failure")
            if record is not None:
                record.fail(errors.ServiceError("internal error"))
            if started:
                raise
            await self._error(scope, send, errors.ServiceError("internal error"))
        finally:
            if record is not None and self.db is not None:
                await self._audit(record)

    # ---------------------------------------------------------------- serving
    async def _serve(self, scope, send, record: _Download, *, head: bool) -> None:
        rest = scope["path"][len(PREFIX) :]
        kind, _, ident = rest.partition("/")  # the ASGI path is already percent-decoded
        record.kind, record.object_id = kind[:32], ident[:256]
        resolver = RESOLVERS.get(kind)
        if resolver is None or not ident:
            raise errors.NotFound("no such data URL")
        params = dict(
            urllib.parse.parse_qsl(
                scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
            )
        )
        exp, values = check_signature(self.settings, kind, ident, params)
        record.caller = values.get(WHO, ANONYMOUS)[:512]  # signed: trusted from here on
        check_expiry(exp)
        target = await self._resolve(kind, ident, resolver)
        record.object_id = target.object_id or record.object_id
        record.dataset_id = target.dataset_id
        record.extra = target.audit
        for check in GRANT_CHECKS:  # off the event loop: a check may ask the database
            await asyncio.get_running_loop().run_in_executor(
                None, check, self.settings, self.db, record.caller, target.dataset_id
            )
        store = storage.for_location(
            target.location,
            self.settings,
            registered=Stat(target.size, target.mtime_ns),
            raw=target.raw,
        )
        if target.header:
            from server.c4gh.stream import read_header

            def archived_length() -> int:
                with store.open() as fh:
                    return read_header(fh).length

            length = await asyncio.get_running_loop().run_in_executor(None, archived_length)
            store = storage.ReheaderedStorage(store, target.header, length)
        if store.streamed:  # plaintext decrypted in memory: no descriptor to send
            await self._stream(scope, send, record, store, head=head)
            return
        url = store.presigned_url(max(1, exp - int(time.time())))
        if url is not None:  # the store serves the bytes itself
            record.redirect = True
            await self._respond(
                send, 307, [(b"location", url.encode()), (b"cache-control", b"no-store")]
            )
            return
        try:
            fh = store.open()  # the node's own file: read by descriptor below
        except FileNotFoundError:
            raise errors.NotFound("the data file is missing") from None
        fd = fh.fileno()
        try:
            st = os.fstat(fd)
            size = st.st_size
            try:
                storage.check_unchanged(store.registered, Stat(size, st.st_mtime_ns))
            except errors.DataChanged:
                logger.error(
                    "refusing to serve %s %s: it changed since it was registered",
                    kind,
                    record.object_id,
                )
                raise
            status, start, end, out = _ranged(
                scope,
                record,
                size,
                (b"cache-control", b"private, max-age=60"),
                (b"last-modified", formatdate(st.st_mtime, usegmt=True).encode()),
            )
            if await _start(send, status, out, head=head):
                return
            if self.zerocopy and ZEROCOPY in scope.get("extensions", {}):
                # The server hands the file to the kernel (sendfile): no copies here.
                _advise(fd, start, end - start, sequential=True)
                await send(
                    {
                        "type": ZEROCOPY,
                        "file": fh,
                        "offset": start,
                        "count": end - start,
                        "more_body": False,
                    }
                )
                record.sent = end - start
                return
            # Reads run on the event loop: a thread hop per chunk costs more than the
            # read itself (page cache), and the kernel is asked to read ahead the next
            # chunk while this one is sent, so a disk read rarely blocks.
            _advise(fd, start, min(CHUNK, end - start), sequential=True)
            pos = start
            while pos < end:
                chunk = os.pread(fd, min(CHUNK, end - pos), pos)
                if not chunk:
                    break
                pos += len(chunk)
                if pos < end:
                    _advise(fd, pos, min(CHUNK, end - pos))
                await send({"type": "http.response.body", "body": chunk, "more_body": pos < end})
                record.sent += len(chunk)
            if pos < end:  # the file shrank: end the response short rather than pad it
                logger.warning("data file shorter than expected while streaming")
                record.short = True
                await send({"type": "http.response.body", "body": b""})
        finally:
            fh.close()

    async def _stream(self, scope, send, record: _Download, store, *, head: bool) -> None:
        """Serve a backend's bytes read in chunks off the event loop (a Crypt4GH
        file's plaintext: each chunk decrypted in memory, never written anywhere)."""
        loop = asyncio.get_running_loop()
        try:
            current = await loop.run_in_executor(None, store.stat)
        except FileNotFoundError:
            raise errors.NotFound("the data file is missing") from None
        storage.check_unchanged(store.registered, current)
        size = current.size or 0
        status, start, end, out = _ranged(
            scope, record, size, (b"cache-control", b"private, no-store")
        )
        fh = await loop.run_in_executor(None, store.open)
        try:
            if await _start(send, status, out, head=head):
                return
            fh.seek(start)
            pos = start
            while pos < end:
                chunk = await loop.run_in_executor(None, fh.read, min(CHUNK, end - pos))
                if not chunk:
                    break
                pos += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": pos < end})
                record.sent += len(chunk)
            if pos < end:
                record.short = True
                await send({"type": "http.response.body", "body": b""})
        finally:
            fh.close()

    async def _audit(self, record: _Download) -> None:
        """One row per download, after the response (the client is not kept waiting)."""
        row = record.row()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, functools.partial(_append, self.db, row))
        except Exception:  # noqa: BLE001 - the bytes are gone; say loudly that the row is not
            logger.exception(
                "could not write the data-plane audit row",
                extra={"audit": {k: v for k, v in row.items() if k != "query"}},
            )

    async def _resolve(self, kind: str, ident: str, resolver: Resolver) -> Target:
        key = (kind, ident)
        with self._cache_lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        loop = asyncio.get_running_loop()
        target = await loop.run_in_executor(None, resolver, self.settings, self.db, ident)
        if not isinstance(target, Target):
            target = Target(target)
        with self._cache_lock:
            self._cache[key] = target
        return target

    # ---------------------------------------------------------------- helpers
    async def _respond(self, send, status: int, headers: list, body: bytes = b"") -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": headers + CORS_HEADERS + [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _error(self, scope, send, exc: errors.ServiceError) -> None:
        body, status = error_body(exc, scope.get("path", PREFIX))
        payload = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json")]
        if isinstance(exc, errors.RangeNotSatisfiable):
            size = exc.detail.get("size")
            if size is not None:
                headers.append((b"content-range", f"bytes */{size}".encode()))
        await self._respond(send, status, headers, payload)


# ------------------------------------------------------------------ audit
class _Download:
    """What the audit row of one data-plane request says."""

    __slots__ = (
        "method",
        "request_id",
        "caller",
        "kind",
        "object_id",
        "dataset_id",
        "status",
        "start",
        "end",
        "sent",
        "extra",
        "redirect",
        "short",
        "error",
    )

    def __init__(self, method: str, request_id: str):
        self.method, self.request_id = method, request_id
        self.caller = ANONYMOUS  # until a valid signature names the caller
        self.kind = self.object_id = self.dataset_id = ""
        self.status = 500
        self.start: int | None = None
        self.end: int | None = None
        self.sent = 0
        self.extra: dict = {}
        self.redirect = self.short = False
        self.error = ""

    def fail(self, exc: errors.ServiceError) -> None:
        self.status, self.error = exc.status, exc.error

    def row(self) -> dict:
        query: dict = {"method": self.method, "kind": self.kind, "bytes": self.sent, **self.extra}
        if self.start is not None:
            query["start"], query["end"] = self.start, self.end  # 0-based, half-open
        if self.redirect:
            query["redirect"] = "s3"
        if self.short:
            query["short"] = True
        if self.error:
            query["error"] = self.error
        from server.auth.audit import outcome_for

        return {
            "caller": self.caller,
            "api": "data",
            "action": ("head." if self.method == "HEAD" else "download.") + (self.kind or "?"),
            "outcome": outcome_for(self.status),
            "status": self.status,
            "dataset_id": self.dataset_id,
            "object_id": self.object_id,
            "query": query,
            "request_id": self.request_id,
        }


def _append(db, row: dict) -> None:
    from server.auth.audit import append

    append(db, **row)
