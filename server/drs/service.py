"""DRS 1.5 logic: objects, bundles, access URLs, bulk requests, authorizations.

Framework-free: handlers build a :class:`DrsContext` (settings, database,
caller) and call these functions; errors are raised from
``server.errors`` and rendered by the routing layer as ``{msg, status_code}``.

Access rules: a file's objects (blob, index, bundle) are readable by whoever
may read its dataset (``server.auth.authorize``); metadata is guarded like the
bytes. A WES output is readable by its run's owner only (others get 404, so
its existence is not revealed). The rules are ``server.auth``'s; every decision
is written to the audit log (``server.auth.audit.Decision``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa

from server.auth import Caller, access_expires, authorize_dataset, check_token, owner_access
from server.auth.audit import Decision
from server.db import Database
from server.db.tables import DataFile, Dataset
from server.drs import ids
from server.drs.tables import WesOutputObject
from server.errors import (
    InvalidAuthentication,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
)
from server.settings import Settings
from server.storage import is_local

ACCESS_ID = "https"
MIME = {
    "BAM": "application/octet-stream",
    "CRAM": "application/octet-stream",
    "VCF": "application/gzip",
    "BCF": "application/octet-stream",
}


def public_host(settings: Settings) -> str:
    """Host of ``drs://`` URIs: the public URL's host, without port."""
    return urlsplit(settings.public_url).hostname or "localhost"


def self_uri(settings: Settings, drs_id: str) -> str:
    return f"drs://{public_host(settings)}/{drs_id}"


def _iso(value: dt.datetime | None) -> str:
    if value is None:
        value = dt.datetime.now(dt.UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class DrsContext:
    settings: Settings
    db: Database
    caller: Caller


# ------------------------------------------------------------ resolution
@dataclass
class Resolved:
    """One DRS object, with what is needed to authorise and describe it."""

    drs_id: str
    kind: str  # file | index | bundle | wes
    dataset: Dataset | None = None
    file: DataFile | None = None
    wes: WesOutputObject | None = None


def _lookup(session, drs_id: str) -> Resolved:
    parsed = ids.parse(drs_id)
    if parsed is None:
        raise NotFound(f"no DRS object {drs_id!r}")
    if parsed.kind == "wes":
        row = session.get(WesOutputObject, parsed.wes_id)
        if row is None:
            raise NotFound(f"no DRS object {drs_id!r}")
        return Resolved(drs_id, "wes", wes=row)
    row = session.scalar(
        sa.select(DataFile).where(
            DataFile.object_id == parsed.object_id, DataFile.format == parsed.format
        )
    )
    if row is None:
        raise NotFound(f"no DRS object {drs_id!r}")
    if parsed.kind == "index" and (
        not row.index_format or ids.INDEX_EXT.get(row.index_format) != parsed.index_ext
    ):
        raise NotFound(f"no DRS object {drs_id!r}")
    dataset = session.get(Dataset, row.dataset_id)
    if dataset is None:  # pragma: no cover - foreign key
        raise NotFound(f"no DRS object {drs_id!r}")
    return Resolved(drs_id, parsed.kind, dataset=dataset, file=row)


def _check(ctx: DrsContext, obj: Resolved) -> None:
    """Authorise the caller for one resolved object (raises 401/403/404)."""
    if obj.kind == "wes":
        owner_access(
            ctx.caller,
            obj.wes.owner,  # type: ignore[union-attr]
            ctx.settings,
            NotFound(f"no DRS object {obj.drs_id!r}"),
            what="this object",
        )
        return
    authorize_dataset(ctx.caller, obj.dataset, what="object")


def _decision(ctx: DrsContext, action: str, **fields) -> Decision:
    return Decision(ctx.db, ctx.caller, api="drs", action=action, **fields)


def resolve(ctx: DrsContext, drs_id: str, *, action: str) -> Resolved:
    """Look up and authorise one object, auditing the decision either way."""
    with _decision(ctx, action, object_id=drs_id[:256], query={"drs_id": drs_id[:300]}) as decision:
        check_token(ctx.caller)  # a rejected token learns nothing, not even existence
        with ctx.db.session() as session:
            obj = _lookup(session, drs_id)
            if obj.dataset is not None:
                decision.dataset_id = obj.dataset.id
            _check(ctx, obj)
    return obj


# ------------------------------------------------------------ rendering
def _checksums(sha256: str, md5: str) -> list[dict]:
    out = [{"type": "sha-256", "checksum": sha256}]
    if md5:
        out.append({"type": "md5", "checksum": md5})
    return out


def _blob(
    settings: Settings,
    drs_id: str,
    size: int,
    sha256: str,
    md5: str,
    *,
    created,
    updated,
    mime: str,
    description: str,
    aliases: list[str],
) -> dict:
    return {
        "id": drs_id,
        "name": drs_id,
        "self_uri": self_uri(settings, drs_id),
        "size": int(size),
        "created_time": _iso(created),
        "updated_time": _iso(updated or created),
        "version": sha256[:16],
        "mime_type": mime,
        "checksums": _checksums(sha256, md5),
        "access_methods": [{"type": "https", "access_id": ACCESS_ID}],
        "description": description,
        "aliases": aliases,
    }


def _bundle_checksum(algo: str, values: list[str]) -> str:
    return hashlib.new(algo, "".join(sorted(values)).encode()).hexdigest()


def _file_blob(settings: Settings, f: DataFile, ds: Dataset, *, index: bool) -> dict:
    """The blob of a registered file or (``index``) of its index."""
    fid = ids.file_id(f.object_id, f.format)
    if index:
        drs_id = ids.index_id(f.object_id, f.format, f.index_format)
        size, sha256, md5 = f.index_size, f.index_sha256, f.index_md5
        mime = "application/octet-stream"
        description, aliases = f"{f.index_format} index of {fid}", []
    else:
        drs_id, size, sha256, md5 = fid, f.size, f.sha256, f.md5
        mime = MIME.get(f.format, "application/octet-stream")
        description, aliases = f"{f.format} {f.object_id} of dataset {ds.id}", [f.object_id]
    return _blob(
        settings,
        drs_id,
        size,
        sha256,
        md5,
        created=f.created,
        updated=f.updated,
        mime=mime,
        description=description,
        aliases=aliases,
    )


def render(settings: Settings, obj: Resolved, expand: bool = False) -> dict:
    """The DrsObject JSON for an (authorised) object."""
    if obj.kind == "wes":
        w = obj.wes
        return _blob(
            settings,
            obj.drs_id,
            w.size,
            w.sha256,
            w.md5,  # type: ignore
            created=w.created,
            updated=w.created,
            mime="application/octet-stream",
            description=f"output {w.name} of WES run {w.run_id}",
            aliases=[f"{w.run_id}/{w.name}"],
        )
    f = obj.file
    if obj.kind in ("file", "index"):
        return _file_blob(settings, f, obj.dataset, index=obj.kind == "index")
    fid = ids.file_id(f.object_id, f.format)
    iid = ids.index_id(f.object_id, f.format, f.index_format)
    # bundle: the file and its index
    contents = [
        {"name": fid, "id": fid, "drs_uri": [self_uri(settings, fid)]},
        {"name": iid, "id": iid, "drs_uri": [self_uri(settings, iid)]},
    ]
    md5s = [f.md5, f.index_md5]
    checksums = [
        {"type": "sha-256", "checksum": _bundle_checksum("sha256", [f.sha256, f.index_sha256])}
    ]
    if all(md5s):
        checksums.append({"type": "md5", "checksum": _bundle_checksum("md5", md5s)})
    return {
        "id": obj.drs_id,
        "name": obj.drs_id,
        "self_uri": self_uri(settings, obj.drs_id),
        "size": int(f.size) + int(f.index_size),
        "created_time": _iso(f.created),
        "updated_time": _iso(f.updated or f.created),
        "version": f.sha256[:16],
        "checksums": checksums,
        "contents": contents,
        "description": f"{fid} with its {f.index_format} index",
        "aliases": [f.object_id],
    }


# ------------------------------------------------------------ operations
def get_object(ctx: DrsContext, drs_id: str, expand: bool = False) -> dict:
    return render(ctx.settings, resolve(ctx, drs_id, action="get_object"), expand)


def _sign(settings: Settings, kind: str, key: str, caller: Caller, expires: float | None) -> str:
    """A data URL for ``caller`` that dies with the grant (``expires``)."""
    from server.auth.urls import sign_url

    url = sign_url(settings, kind, key, caller=caller.label, expires=expires)
    if url.startswith("/"):
        url = settings.public_url.rstrip("/") + url
    return url


def access_url(ctx: DrsContext, drs_id: str, access_id: str, client_key: str | None = None) -> dict:
    """A short-lived URL for the object's bytes (blobs only). ``client_key`` (the
    ``client-public-key`` header): for a Crypt4GH-archived file, its Crypt4GH
    stream re-headered for that key; without it, its plaintext."""
    obj = resolve(ctx, drs_id, action="access_url")
    if access_id != ACCESS_ID or obj.kind == "bundle":
        raise NotFound(f"object {drs_id!r} has no access method {access_id!r}")
    if obj.kind == "wes":  # the owner's own output: the token (and its visas) decided
        return {
            "url": _sign(
                ctx.settings,
                "wes",
                obj.wes.url_key,  # type: ignore[union-attr]
                ctx.caller,
                ctx.caller.expires,
            )
        }
    kind = "file" if obj.kind == "file" else "index"
    ident = str(obj.file.pk)  # type: ignore[union-attr]
    from server.storage import is_crypt4gh

    location = obj.file.location if kind == "file" else obj.file.index_location  # type: ignore
    if client_key and kind == "file" and is_crypt4gh(location):
        kind, ident = "c4ghkey", f"{ident}.{_client_header(ctx.settings, obj.file, client_key)}"
    elif is_crypt4gh(location):
        from server.htsget.crypt4gh import requires_encryption

        if requires_encryption(ctx.db, obj.dataset.id):  # type: ignore[union-attr]
            raise PermissionDenied(
                "this dataset is served encrypted only: send your Crypt4GH public key in "
                "the client-public-key header"
            )
    return {
        "url": _sign(
            ctx.settings,
            kind,
            ident,
            ctx.caller,  # type: ignore[union-attr]
            access_expires(ctx.caller, obj.dataset.access),
        )
    }  # type: ignore[union-attr]


def _client_header(settings: Settings, datafile, client_key: str) -> str:
    """A Crypt4GH header giving the client's key the archived file's data key
    (url-safe base64, unpadded: it travels in the signed URL)."""
    import base64

    from server.c4gh import keys, stream
    from server.storage import for_location

    public = keys.parse_client_key(client_key)
    with for_location(datafile.location, settings, raw=True).open() as fh:
        head = stream.read_header(fh)
    node = keys.node_key(settings)
    data_keys = stream.session_keys(head, keys.serving_keys(settings))
    header = stream.header_for(data_keys, node.recipients(public))
    return base64.urlsafe_b64encode(header).decode().rstrip("=")


def _check_bulk(settings: Settings, items) -> None:
    if not isinstance(items, list) or not items:
        raise InvalidInput("the request must list at least one object")
    if len(items) > settings.drs_max_bulk:
        raise PayloadTooLarge(
            f"at most {settings.drs_max_bulk} objects per bulk request (maxBulkRequestLength)"
        )


def _unresolved(failures: dict[int, list[str]]) -> list[dict]:
    return [{"error_code": code, "object_ids": oids} for code, oids in sorted(failures.items())]


def _fail_on_bad_token(ctx: DrsContext) -> None:
    with _decision(ctx, "bulk", record_grant=False):
        check_token(ctx.caller)


def bulk_objects(ctx: DrsContext, object_ids, expand: bool = False) -> dict:
    _check_bulk(ctx.settings, object_ids)
    _fail_on_bad_token(ctx)
    resolved, failures = [], {}
    for drs_id in object_ids:
        if not isinstance(drs_id, str):
            raise InvalidInput("bulk_object_ids must be strings")
        try:
            resolved.append(get_object(ctx, drs_id, expand))
        except (NotFound, InvalidAuthentication, PermissionDenied) as exc:
            failures.setdefault(exc.status, []).append(drs_id)
    return {
        "summary": {
            "requested": len(object_ids),
            "resolved": len(resolved),
            "unresolved": len(object_ids) - len(resolved),
        },
        "unresolved_drs_objects": _unresolved(failures),
        "resolved_drs_object": resolved,
    }


def bulk_access(ctx: DrsContext, requests) -> dict:
    _check_bulk(ctx.settings, requests)
    total = sum(len(r.get("bulk_access_ids") or []) for r in requests if isinstance(r, dict))
    if total > ctx.settings.drs_max_bulk:
        raise PayloadTooLarge(f"at most {ctx.settings.drs_max_bulk} access ids per bulk request")
    _fail_on_bad_token(ctx)
    urls, failures, requested = [], {}, 0
    for item in requests:
        if not isinstance(item, dict) or not isinstance(item.get("bulk_object_id"), str):
            raise InvalidInput("each entry needs a bulk_object_id")
        drs_id = item["bulk_object_id"]
        access_ids = item.get("bulk_access_ids") or [ACCESS_ID]
        if not isinstance(access_ids, list) or not all(isinstance(a, str) for a in access_ids):
            raise InvalidInput("bulk_access_ids must be a list of strings")
        for access_id in access_ids:
            requested += 1
            try:
                url = access_url(ctx, drs_id, access_id)
            except (NotFound, InvalidAuthentication, PermissionDenied) as exc:
                failures.setdefault(exc.status, []).append(drs_id)
                continue
            urls.append({"drs_object_id": drs_id, "drs_access_id": access_id, **url})
    return {
        "summary": {
            "requested": requested,
            "resolved": len(urls),
            "unresolved": requested - len(urls),
        },
        "unresolved_drs_objects": _unresolved(failures),
        "resolved_drs_object_access_urls": urls,
    }


def _authorizations(settings: Settings, obj: Resolved) -> dict:
    if obj.kind != "wes" and obj.dataset.access == "public":  # type: ignore[union-attr]
        return {"drs_object_id": obj.drs_id, "supported_types": ["None"]}
    issuers = sorted(
        {
            e.get("issuer")
            for e in settings.auth_issuers
            if isinstance(e, dict) and isinstance(e.get("issuer"), str)
        }
    )
    visa_issuers = sorted(set(issuers) | set(dict(settings.visa_jku_allowlist or {})))
    return {
        "drs_object_id": obj.drs_id,
        "supported_types": ["BearerAuth", "PassportAuth"],
        "passport_auth_issuers": visa_issuers,
        "bearer_auth_issuers": issuers,
    }


def options_object(ctx: DrsContext, drs_id: str) -> dict:
    """How to authorise requests for an object (needs no credentials)."""
    with ctx.db.session() as session:
        obj = _lookup(session, drs_id)
    return _authorizations(ctx.settings, obj)


def options_bulk(ctx: DrsContext, object_ids) -> dict:
    _check_bulk(ctx.settings, object_ids)
    found, missing = [], []
    with ctx.db.session() as session:
        for drs_id in object_ids:
            try:
                found.append(_authorizations(ctx.settings, _lookup(session, str(drs_id))))
            except NotFound:
                missing.append(str(drs_id))
    return {
        "summary": {
            "requested": len(object_ids),
            "resolved": len(found),
            "unresolved": len(missing),
        },
        "unresolved_drs_objects": _unresolved({404: missing} if missing else {}),
        "resolved_drs_object": found,
    }


def stats(db: Database) -> tuple[int, int]:
    """(objectCount, totalObjectSize): blobs and bundles, unique bytes once."""
    with db.session() as session:
        files, size, isize, with_index = session.execute(
            sa.select(
                sa.func.count(DataFile.pk),
                sa.func.coalesce(sa.func.sum(DataFile.size), 0),
                sa.func.coalesce(sa.func.sum(DataFile.index_size), 0),
                sa.func.count(DataFile.pk).filter(DataFile.index_format != ""),
            )
        ).one()
        outputs, osize = session.execute(
            sa.select(
                sa.func.count(WesOutputObject.id),
                sa.func.coalesce(sa.func.sum(WesOutputObject.size), 0),
            )
        ).one()
    return int(files + 2 * with_index + outputs), int(size + isize + osize)


def service_info(settings: Settings, db: Database) -> dict:
    from server import service_info as node_info

    count, total = stats(db)
    info = node_info.api_info(settings, "drs")
    info.pop("url", None)  # a Service Registry field, not part of a service's own service-info
    info["maxBulkRequestLength"] = settings.drs_max_bulk
    info["drs"] = {
        "maxBulkRequestLength": settings.drs_max_bulk,
        "objectCount": count,
        "totalObjectSize": total,
    }
    return info


# ------------------------------------------------------------ WES integration
def _hash_file(path: Path) -> tuple[int, str, str]:
    sha, md5, size = hashlib.sha256(), hashlib.md5(), 0  # noqa: S324 - DRS checksum type
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return size, sha.hexdigest(), md5.hexdigest()


def register_wes_output(
    db: Database, *, run_id: str, name: str, path: str | Path, owner: str, url_key: str
) -> str:
    """Publish one WES output file as a DRS object; returns its DRS id.

    ``owner`` is the submitting caller's ``label``: only that caller can read
    it. ``url_key`` is what ``server.auth.urls.sign_url(settings, "wes", key)``
    serves the bytes under. Registering the same (run_id, name) again returns
    the existing id (updated to the file's current bytes).
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"WES output {name!r} is not a file")
    size, sha, md5 = _hash_file(path)
    with db.session() as session:
        row = session.scalar(
            sa.select(WesOutputObject).where(
                WesOutputObject.run_id == run_id, WesOutputObject.name == name
            )
        )
        if row is None:
            row = WesOutputObject(
                id=ids.WES_PREFIX + uuid.uuid4().hex,
                run_id=run_id,
                name=name,
                owner=owner,
                location=str(path.resolve()),
                url_key=url_key,
                size=size,
                sha256=sha,
                md5=md5,
            )
            session.add(row)
        else:
            row.location, row.url_key, row.size, row.sha256, row.md5 = (
                str(path.resolve()),
                url_key,
                size,
                sha,
                md5,
            )
        return row.id


def wes_outputs(db: Database, run_id: str) -> dict[str, str]:
    """{output name: DRS id} for one run."""
    with db.session() as session:
        rows = session.scalars(sa.select(WesOutputObject).where(WesOutputObject.run_id == run_id))
        return {r.name: r.id for r in rows}


def resolve_for_wes(
    settings: Settings,
    db: Database,
    caller: Caller,
    uri: str,
) -> str:
    """A ``drs://`` URI of this node -> local path, with the submitter's own rights.

    Raises InvalidInput for another host, NotFound / 401 / 403 like DRS does.
    Only files on the node's filesystem can be workflow inputs.
    """
    parts = urlsplit(uri)
    if parts.scheme != "drs" or not parts.hostname:
        raise InvalidInput(f"not a drs:// URI: {uri!r}")
    if parts.hostname != public_host(settings):
        raise InvalidInput(f"drs:// URI of another host ({parts.hostname}) is not supported")
    drs_id = parts.path.lstrip("/")
    ctx = DrsContext(settings, db, caller)
    obj = resolve(ctx, drs_id, action="wes_input")
    if obj.kind == "bundle":
        raise InvalidInput(f"{uri}: a bundle cannot be a workflow input file")
    if obj.kind == "wes":
        location = obj.wes.location  # type: ignore[union-attr]
    else:
        location = obj.file.location if obj.kind == "file" else obj.file.index_location  # type: ignore
    if not is_local(location):
        raise InvalidInput(f"{uri}: object storage inputs are not supported for workflows")
    return location
