"""htsget 1.3 tickets, computed from the index alone.

``parse_get`` / ``parse_post`` turn a request into a ``TicketRequest``
(validating everything the specification constrains), ``ticket`` decides
access and builds the ticket: header, merged body ranges in file order, EOF.
Byte ranges point at the data plane through one short-lived signed URL,
which names the caller and expires with the grant behind the ticket;
bytes made here (re-encoded boundary blocks, the EOF marker) are inline
``data:;base64,`` URLs.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import time
from dataclasses import dataclass

from server.auth import Caller, authorize
from server.auth.audit import Decision
from server.db import Database
from server.errors import (
    InvalidInput,
    InvalidRange,
    NotFound,
    ServiceError,
    UnsupportedFormat,
)
from server.genomics import slices
from server.genomics.coords import range_header
from server.genomics.slices import ByteRange, Inline, Region
from server.htsget import crypt4gh
from server.settings import Settings
from server.storage import Stat, Storage, for_location

MEDIA_TYPE = "application/vnd.ga4gh.htsget.v1.3.0+json"
ENDPOINT_FORMATS = {"reads": ("BAM", "CRAM"), "variants": ("VCF", "BCF")}
READ_FIELDS = (
    "QNAME",
    "FLAG",
    "RNAME",
    "POS",
    "MAPQ",
    "CIGAR",
    "RNEXT",
    "PNEXT",
    "TLEN",
    "SEQ",
    "QUAL",
)
CLASSES = ("header", "body")
MAX_REGIONS = 1000
# Fields, tags and notags are validated but every ticket returns whole records;
# service-info says so.
FIELDS_EFFECTIVE = False
TAGS_EFFECTIVE = False


@dataclass
class TicketRequest:
    endpoint: str  # reads | variants
    object_id: str
    format: str | None = None  # upper case, validated against the endpoint
    class_: str | None = None
    regions: list[Region] | None = None  # None: the whole file
    fields: list[str] | None = None
    tags: list[str] | None = None
    notags: list[str] | None = None
    method: str = "GET"
    encryption: str | None = None  # "C4GH": a Crypt4GH ticket for the client's key

    def audit_query(self) -> dict:
        query: dict = {"method": self.method}
        if self.format:
            query["format"] = self.format
        if self.class_:
            query["class"] = self.class_
        if self.encryption:
            query["encryptionScheme"] = self.encryption
        if self.regions is not None:
            query["regions"] = [
                {"referenceName": r.reference_name, "start": r.start, "end": r.end}
                for r in self.regions[:20]
            ]
        return query


# ------------------------------------------------------------------ parsing
def _format(endpoint: str, value) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput("format must be a string")
    fmt = value.strip().upper()
    if fmt not in ENDPOINT_FORMATS[endpoint]:
        raise UnsupportedFormat(
            f"format {value!r} is not served on /{endpoint} "
            f"(supported: {', '.join(ENDPOINT_FORMATS[endpoint])})"
        )
    return fmt


def _encryption(value) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.strip().upper() != "C4GH":
        raise InvalidInput("encryptionScheme must be C4GH")
    return "C4GH"


def _class(value) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.lower() not in CLASSES:
        raise InvalidInput("class must be 'header' or 'body'")
    return value.lower()


LIST_PARAMS = ("fields", "tags", "notags")  # in the order of TicketRequest's fields


def _str_list(name: str, value, *, csv: bool) -> list[str] | None:
    if value is None:
        return None
    if csv and isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise InvalidInput(f"{name} must be a list of strings")
    if any(not v for v in items):
        raise InvalidInput(f"{name} contains an empty value")
    return items


def _lists(endpoint: str, source: dict, *, csv: bool) -> tuple[list[str] | None, ...]:
    """``fields``, ``tags`` and ``notags`` of a request, checked (``csv``: a GET's
    comma-separated query values; else a POST body's JSON lists)."""
    lists = tuple(_str_list(name, source.get(name), csv=csv) for name in LIST_PARAMS)
    _check_lists(endpoint, *lists)
    return lists


def _check_lists(endpoint: str, fields, tags, notags) -> None:
    if fields is not None and endpoint == "reads":
        unknown = [f for f in fields if f.upper() not in READ_FIELDS]
        if unknown:
            raise InvalidInput(
                f"unknown field(s) {', '.join(unknown)}; fields are {', '.join(READ_FIELDS)}"
            )
    for name, values in (("tags", tags), ("notags", notags)):
        for tag in values or ():
            if endpoint == "reads" and (len(tag) != 2 or not tag.isalnum()):
                raise InvalidInput(f"{name}: {tag!r} is not a two-character SAM tag")
    if tags and notags:
        both = sorted(set(tags) & set(notags))
        if both:
            raise InvalidInput(f"tag(s) {', '.join(both)} appear in both tags and notags")


def _int(name: str, value) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be an integer")
    if isinstance(value, int):
        out = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        out = int(value)
    else:
        raise InvalidInput(f"{name} must be an integer")
    if out < 0 or out >= 1 << 63:
        raise InvalidRange(f"{name} must be between 0 and 2^63-1")
    return out


def parse_get(endpoint: str, object_id: str, params: dict) -> TicketRequest:
    """A GET request's query parameters (unknown ones are ignored)."""
    fmt = _format(endpoint, params.get("format"))
    cls = _class(params.get("class"))
    name = params.get("referenceName")
    start, end = _int("start", params.get("start")), _int("end", params.get("end"))
    lists = _lists(endpoint, params, csv=True)
    regions = None
    if name is not None and name != "":
        if start is not None and end is not None and start > end:
            raise InvalidRange(f"start ({start}) is greater than end ({end})")
        if name == "*" and (start is not None or end is not None):
            raise InvalidInput("start and end cannot be used with referenceName=*")
        regions = [Region(name, start, end)]
    elif start is not None or end is not None:
        raise InvalidInput("start and end require referenceName")
    if cls == "header" and regions is not None:
        raise InvalidInput("class=header cannot be combined with a region")
    scheme = _encryption(params.get("encryptionScheme"))
    return TicketRequest(endpoint, object_id, fmt, cls, regions, *lists, "GET", scheme)


def parse_post(endpoint: str, object_id: str, body, query: dict | None = None) -> TicketRequest:
    """A POST request's JSON body (raw bytes, text or already-parsed)."""
    if query:
        raise InvalidInput("POST requests take their parameters in the body, not the query string")
    if isinstance(body, (bytes, bytearray, str)):
        if (
            not body
            or not str(body if isinstance(body, str) else body.decode("utf-8", "replace")).strip()
        ):
            body = {}
        else:
            try:
                body = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise InvalidInput("the request body is not valid JSON") from None
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    fmt = _format(endpoint, body.get("format"))
    cls = _class(body.get("class"))
    lists = _lists(endpoint, body, csv=False)
    regions = None
    if "regions" in body and body["regions"] is not None:
        raw = body["regions"]
        if not isinstance(raw, list) or not raw:
            raise InvalidInput("regions must be a non-empty list")
        if len(raw) > MAX_REGIONS:
            raise InvalidInput(f"at most {MAX_REGIONS} regions per request")
        regions = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise InvalidInput(f"regions[{i}] must be an object")
            name = item.get("referenceName")
            if not isinstance(name, str) or not name:
                raise InvalidInput(f"regions[{i}] has no referenceName")
            start, end = _int("start", item.get("start")), _int("end", item.get("end"))
            if start is not None and end is not None and start >= end:
                raise InvalidRange(f"regions[{i}]: start ({start}) must be less than end ({end})")
            if name == "*" and (start is not None or end is not None):
                raise InvalidInput("start and end cannot be used with referenceName=*")
            regions.append(Region(name, start, end))
    if cls == "header" and regions is not None:
        raise InvalidInput("class=header cannot be combined with regions")
    scheme = _encryption(body.get("encryptionScheme"))
    return TicketRequest(endpoint, object_id, fmt, cls, regions, *lists, "POST", scheme)


# ------------------------------------------------------------------ tickets
@dataclass
class Context:
    settings: Settings
    db: Database
    caller: Caller


def _choose_file(request: TicketRequest, files: list) -> object:
    allowed = ENDPOINT_FORMATS[request.endpoint]
    candidates = {f.format.upper(): f for f in files if f.format.upper() in allowed}
    if not candidates:
        raise NotFound(f"no {request.endpoint} object {request.object_id!r}")
    if request.format:
        chosen = candidates.get(request.format)
        if chosen is None:
            raise UnsupportedFormat(
                f"object {request.object_id!r} is not available as {request.format} "
                f"(available: {', '.join(sorted(candidates))})"
            )
        return chosen
    return next(candidates[fmt] for fmt in allowed if fmt in candidates)


@functools.lru_cache(maxsize=1)
def _files_query():
    """Built once: the lookup runs on every ticket."""
    import sqlalchemy as sa

    from server.db.prepared import PreparedSelect
    from server.db.tables import DataFile, Dataset

    return PreparedSelect(
        sa.select(
            DataFile.pk,
            DataFile.format,
            DataFile.location,
            DataFile.index_location,
            DataFile.index_format,
            DataFile.size,
            DataFile.mtime_ns,
            DataFile.index_size,
            DataFile.index_mtime_ns,
            DataFile.dataset_id,
            Dataset.access,
            Dataset.grant_value,
        )
        .join(Dataset, Dataset.id == DataFile.dataset_id)
        .where(DataFile.object_id == sa.bindparam("object_id"))
        .order_by(DataFile.format)
    )


def _files(db: Database, object_id: str) -> list:
    """The object's files with their dataset's access level: one query, never cached
    (a dataset's access level may change at any time)."""
    return _files_query().rows(db.engine, {"object_id": object_id})


def ticket(ctx: Context, request: TicketRequest, client_key: str | None = None) -> dict:
    """Authorise, then build the ticket: ``plan`` with its decision audited.

    ``client_key``: the ``client-public-key`` header, for ``encryptionScheme=C4GH``."""
    with Decision(
        ctx.db,
        ctx.caller,
        api="htsget",
        action=f"ticket.{request.endpoint}",
        object_id=request.object_id,
        query=request.audit_query(),
    ) as decision:
        return plan(ctx, request, decision, client_key)


def plan(
    ctx: Context,
    request: TicketRequest,
    decision: Decision | None = None,
    client_key: str | None = None,
) -> dict:
    """The ticket the caller may have: lookup, access decision, slice, sign.

    ``ticket`` wraps it in the decision's audit row; ``decision`` learns the
    dataset once it is known. Alone (without a decision) it writes nothing,
    which is what ``bench/htsget.py`` measures as the ticket logic.
    """
    files = _files(ctx.db, request.object_id)
    datasets = {f.dataset_id for f in files}
    if len(datasets) > 1:  # the formats of one object always live in one dataset
        raise ServiceError("object spans several datasets")
    if not any(f.format.upper() in ENDPOINT_FORMATS[request.endpoint] for f in files):
        raise NotFound(f"no {request.endpoint} object {request.object_id!r}")
    first = files[0]
    if decision is not None:
        decision.dataset_id = first.dataset_id
    expires = authorize(ctx.caller, first.access, first.grant_value or first.dataset_id)
    chosen = _choose_file(request, files)
    if request.encryption or crypt4gh.is_encrypted(chosen):
        crypt4gh.check_transfer(ctx.db, chosen, request.encryption)
    if request.encryption and crypt4gh.is_encrypted(chosen):
        build = functools.partial(crypt4gh.ticket, client_key=client_key)
    else:
        build = _build
    return build(ctx.settings, request, chosen, caller=ctx.caller.label, expires=expires)


def _storages(settings: Settings, datafile) -> tuple[Storage, Storage]:
    """The file and its index, each with the size and mtime on record."""
    data = for_location(
        datafile.location, settings, registered=Stat(datafile.size, datafile.mtime_ns)
    )
    index = for_location(
        datafile.index_location,
        settings,
        registered=Stat(datafile.index_size, datafile.index_mtime_ns),
    )
    return data, index


def _build(
    settings: Settings,
    request: TicketRequest,
    datafile,
    *,
    caller: str = "anonymous",
    expires: float | None = None,
) -> dict:
    """The ticket; its data URL names ``caller`` and dies at ``expires`` (the grant's end)."""
    from server.auth.urls import sign_url, url_expiry

    data, index = _storages(settings, datafile)
    try:
        # A ticket is not cut from a file that is no longer the registered one (the
        # data plane would refuse its URLs anyway).
        data.unchanged()
        cut = slices.open_indexed(data, datafile.format, index, datafile.index_format)
    except FileNotFoundError:
        raise ServiceError("a registered file or its index is missing") from None
    except slices.SliceError as exc:
        raise ServiceError(f"cannot cut the file: {exc}") from None

    def data_url() -> str:
        ttl = max(1, url_expiry(settings, expires=expires) - int(time.time()))
        return data.url(
            ttl,
            lambda: sign_url(settings, "file", str(datafile.pk), caller=caller, expires=expires),
        )

    header = cut.header()
    if request.class_ == "header":
        parts = [("header", header + [cut.eof_piece()])]
    else:
        if request.regions is not None:
            for region in request.regions:
                if not cut.has_reference(region.reference_name):
                    raise NotFound(f"reference {region.reference_name!r} is not in this file")
        try:
            body = cut.body(request.regions)
        except slices.UnknownReference as exc:
            raise NotFound(f"reference {exc.args[0]!r} is not in this file") from None
        parts = [("header", header), ("body", body + [cut.eof_piece()])]

    url = None
    block = max(1, settings.htsget_block_size)
    urls: list[dict] = []
    for cls, pieces in parts:
        for piece in slices.join_pieces(pieces):
            if isinstance(piece, Inline):
                urls.append(
                    {"url": "data:;base64," + base64.b64encode(piece.data).decode(), "class": cls}
                )
                continue
            if url is None:
                url = data_url()
            assert isinstance(piece, ByteRange)
            for start in range(piece.start, piece.end, block):
                end = min(piece.end, start + block)
                urls.append(
                    {"url": url, "headers": {"Range": range_header(start, end)}, "class": cls}
                )
    return {"htsget": {"format": datafile.format.upper(), "urls": urls}}


def service_info(settings: Settings, endpoint: str) -> dict:
    """GA4GH service-info for one endpoint, with the htsget extension."""
    from server.service_info import api_info

    info = api_info(settings, f"htsget-{endpoint}")
    info["description"] = (
        f"htsget 1.3 {endpoint}: {', '.join(ENDPOINT_FORMATS[endpoint])} slices cut from the index"
    )
    info["htsget"] = {
        "datatype": endpoint,
        "formats": list(ENDPOINT_FORMATS[endpoint]),
        "fieldsParametersEffective": FIELDS_EFFECTIVE,
        "tagsParametersEffective": TAGS_EFFECTIVE,
    }
    return info
