"""htsget tickets with ``encryptionScheme=C4GH``: a Crypt4GH stream for the caller's key.

The archived file is a Crypt4GH header (for the node's key) and the data
segments as the submitter encrypted them. The ticket's parts, joined, are a
Crypt4GH stream the caller decrypts with their own secret key:

1. an inline header made for the caller's public key (from the
   ``client-public-key`` header, as htsget-rs and Funnel send it) holding
   the file's data key and an edit list that selects exactly the slice's
   plaintext bytes;
2. byte ranges of the archived ciphertext: the segments holding those bytes.

Which plaintext bytes form the slice (the header, the regions' whole BGZF
blocks or CRAM containers, the EOF marker) comes from the index and the
layout recorded at ingest (``server.genomics.layout``): no data segment is
decrypted to answer, only the archived header (for the data key) and the
index, both small. The bytes are served by the data plane's ``c4gh`` kind,
which hands out ciphertext as it is stored (or a presigned URL of it).
"""

from __future__ import annotations

import base64
import time

import sqlalchemy as sa

from server.c4gh import keys as node_keys
from server.c4gh import stream
from server.errors import InvalidInput, NotFound, PermissionDenied, ServiceError
from server.genomics import layout as layouts
from server.genomics.coords import range_header
from server.genomics.pieces import LRU, UnknownReference
from server.genomics.slices import INDEXES
from server.settings import Settings
from server.storage import Stat, for_location, is_crypt4gh

_CACHE = LRU(256)


def is_encrypted(datafile) -> bool:
    return is_crypt4gh(datafile.location)


def layout_location(location: str) -> str:
    """``.../GPF1.bam.c4gh`` -> ``.../GPF1.bam.layout``."""
    return location[: -len(".c4gh")] + ".layout"


def check_transfer(db, datafile, encryption: str | None) -> None:
    """Refuse a plaintext ticket for a dataset that requires encrypted transfer.

    A file the node keeps in plaintext (registered by an operator, not received
    through the inbox) is served as plaintext whatever ``encryptionScheme``
    asks: there are no Crypt4GH segments to hand out, and the htsget
    compliance suite asks for C4GH on such files and expects their records."""
    if not encryption and requires_encryption(db, datafile.dataset_id):
        raise PermissionDenied(
            "this dataset is served encrypted only: ask with encryptionScheme=C4GH and "
            "your Crypt4GH public key in the client-public-key header"
        )


def requires_encryption(db, dataset_id: str) -> bool:
    from server.inbox.tables import TransferPolicy

    with db.session() as session:
        row = session.get(TransferPolicy, dataset_id)
        return bool(row is not None and row.encrypted_only)


def _cached(key, make):
    hit = _CACHE.get(key)
    if hit is None:
        hit = make()
        _CACHE.put(key, hit)
    return hit


def archived(settings: Settings, datafile):
    """(header, data keys, ciphertext size, layout, parsed index) of an archived file."""
    data = for_location(datafile.location, settings, raw=True)
    st = data.stat()
    if datafile.mtime_ns and st.mtime_ns != datafile.mtime_ns:
        from server.errors import DataChanged
        from server.storage import CHANGED

        raise DataChanged(CHANGED)

    def header():
        with data.open() as fh:
            head = stream.read_header(fh)
        keys = stream.session_keys(head, node_keys.serving_keys(settings))
        return head, keys

    head, keys = _cached(("header", datafile.location, st), header)

    def load_layout():
        lay = for_location(layout_location(datafile.location), settings)
        return layouts.Layout.loads(lay.read_all())

    lay = _cached(("layout", datafile.location, st), load_layout)

    def load_index():
        idx = for_location(
            datafile.index_location,
            settings,
            registered=Stat(datafile.index_size, datafile.index_mtime_ns),
        )
        return INDEXES[datafile.index_format.upper()](idx.read_all())

    index = _cached(("index", datafile.index_location, datafile.index_mtime_ns), load_index)
    return head, keys, st.size, lay, index


def ticket(
    settings: Settings,
    request,
    datafile,
    client_key: str | None,
    *,
    caller: str,
    expires: float | None,
) -> dict:
    from server.auth.urls import sign_url, url_expiry

    if not client_key:
        raise InvalidInput(
            "encryptionScheme=C4GH needs your Crypt4GH public key in the client-public-key "
            "header (base64 of the key file)"
        )
    public = node_keys.parse_client_key(client_key)
    try:
        head, keys, cipher_size, lay, index = archived(settings, datafile)
    except FileNotFoundError:
        raise ServiceError("a registered file, its index or its layout is missing") from None
    except stream.NotCrypt4GH as exc:
        raise ServiceError(f"the archived file cannot be opened: {exc}") from None
    if request.regions is not None:
        for region in request.regions:
            if region.reference_name != "*" and region.reference_name not in lay.names:
                raise NotFound(f"reference {region.reference_name!r} is not in this file")
    try:
        ranges = layouts.ranges(lay, index, request.regions, header_only=request.class_ == "header")
    except UnknownReference as exc:
        raise NotFound(f"reference {exc.args[0]!r} is not in this file") from None
    edits, runs = stream.region_edit_list(ranges)
    node = node_keys.node_key(settings)
    header = stream.header_for(keys, node.recipients(public), edits)
    urls = [{"url": "data:;base64," + base64.b64encode(header).decode()}]
    ttl = max(1, url_expiry(settings, expires=expires) - int(time.time()))
    data = for_location(datafile.location, settings, raw=True)
    url = data.url(
        ttl, lambda: sign_url(settings, "c4gh", str(datafile.pk), caller=caller, expires=expires)
    )
    block = max(1, settings.htsget_block_size)
    for first, last in runs:
        start = stream.cipher_offset(head.length, first)
        end = min(stream.cipher_offset(head.length, last), cipher_size)
        for lo in range(start, end, block):
            urls.append({"url": url, "headers": {"Range": range_header(lo, min(end, lo + block))}})
    return {"htsget": {"format": datafile.format.upper(), "urls": urls}}


def datafile_row(db, pk: int):
    from server.db.tables import DataFile

    with db.session() as session:
        row = session.scalar(sa.select(DataFile).where(DataFile.pk == pk))
        if row is None:
            raise NotFound("no such data file")
        session.expunge(row)
        return row
