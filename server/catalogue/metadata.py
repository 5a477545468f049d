"""A dataset's catalogue metadata: one document, the source of truth for Beacon
``/datasets`` and the FAIR Data Point.

``genomeport dataset add|update ID --metadata FILE`` reads a YAML or JSON
mapping with these keys (all optional)::

    title: Danish reference genomes            # dct:title, Beacon name
    description: ...                           # dct:description
    keywords: [WGS, reference]                 # dcat:keyword
    themes: [http://publications.europa.eu/resource/authority/data-theme/HEAL]
    publisher: {name: ..., url: https://..., email: ...}   # dct:publisher
    contact: {name: ..., email: ..., url: https://...}     # dcat:contactPoint
    licence: https://creativecommons.org/licenses/by/4.0/  # dct:license
    access_rights: public | restricted | non_public        # dct:accessRights
    data_use: [DUO:0000042, DUO:0000019]       # DUO terms (data-use conditions)
    population_coverage: Adults living in Denmark
    number_of_individuals: 120                 # else derived from the Beacon records
    issued: 2026-01-15                         # dct:issued (xsd:date or xsd:dateTime)
    modified: 2026-11-01
    catalogue: dk-national                     # the catalogue it belongs to
    catalogue_title: Danish national genomes   # that catalogue's title

Only the shape of the document is checked here (a mapping, known keys, the
right kinds of value): what the values must be (IRIs, dates, DUO terms,
e-mail addresses) is said once, by the SHACL shapes the FAIR Data Point
serves (``server.catalogue.shapes``), and ``genomeport dataset check`` reports
what they find. A dataset with no document gets defaults from what the node
knows: its name and description, its access level, the node as publisher and
contact, its registration and update times, and the number of its individuals.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import yaml

from server import duo
from server.db.tables import Dataset, DatasetMetadata
from server.errors import InvalidInput, NotFound
from server.settings import Settings

DEFAULT_CATALOGUE = "genomeport"
HEALTH_THEME = "http://publications.europa.eu/resource/authority/data-theme/HEAL"
ACCESS_RIGHTS = {  # the EU access-right vocabulary
    "public": "PUBLIC",
    "restricted": "RESTRICTED",
    "non_public": "NON_PUBLIC",
}
# a dataset's access level -> its default access rights
ACCESS_OF_LEVEL = {"public": "public", "registered": "restricted", "controlled": "non_public"}
DUO_IRI = duo.IRI
DUO_LABELS = duo.LABELS

_TEXT = ("title", "description", "licence", "access_rights", "population_coverage")
_TEXT += ("catalogue", "catalogue_title", "issued", "modified")
_LISTS = ("keywords", "themes", "data_use")
_AGENTS = ("publisher", "contact")
_AGENT_KEYS = ("name", "email", "url")
KEYS = _TEXT + _LISTS + _AGENTS + ("number_of_individuals",)
_ALIASES = {"license": "licence", "catalog": "catalogue", "accessRights": "access_rights"}


@dataclass(frozen=True)
class Metadata:
    """The metadata of one dataset as published: the document's values over the
    defaults. ``given`` is what the document itself said (no defaults)."""

    dataset_id: str
    access: str
    values: dict
    given: dict

    def __getitem__(self, key):
        return self.values.get(key)


def parse(text: str, name: str = "metadata") -> dict:
    """The document in ``text`` (YAML, of which JSON is a subset), its shape checked."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidInput(f"{name}: not YAML or JSON{where}: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput(f"{name}: the metadata must be a mapping of keys to values")
    out: dict = {}
    for key, value in data.items():
        key = _ALIASES.get(str(key), str(key))
        if key not in KEYS:
            raise InvalidInput(f"{name}: unknown key {key!r} (known: {', '.join(KEYS)})")
        out[key] = _value(name, key, value)
    return out


def _value(name: str, key: str, value):
    if key in _LISTS:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidInput(f"{name}: {key} must be a list of strings")
        return [v.strip() for v in value]
    if key in _AGENTS:
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict) or not all(k in _AGENT_KEYS for k in value):
            raise InvalidInput(f"{name}: {key} must be a mapping of {', '.join(_AGENT_KEYS)}")
        return {k: str(v).strip() for k, v in value.items() if v is not None}
    if key == "number_of_individuals":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{name}: number_of_individuals must be a whole number")
        return value
    if isinstance(value, (dt.date, dt.datetime)):  # YAML reads 2026-01-15 as a date
        return value.isoformat()
    if not isinstance(value, (str, int, float)):
        raise InvalidInput(f"{name}: {key} must be text")
    return str(value).strip()


def read_file(path: str | Path) -> tuple[dict, str]:
    """The parsed document of a file and the sha-256 of its bytes."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{p}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{p}: not UTF-8 text") from None
    return parse(text, str(p)), hashlib.sha256(raw).hexdigest()


def store(db, dataset_id: str, path: str | Path) -> str:
    """Keep the metadata file of a dataset (replacing any earlier one) in one
    transaction; "created", "updated" or "unchanged"."""
    document, sha = read_file(path)
    with db.session() as session:
        if session.get(Dataset, dataset_id) is None:
            raise NotFound(f"no dataset {dataset_id!r} (add it with `genomeport dataset add`)")
        row = session.get(DatasetMetadata, dataset_id)
        if row is None:
            session.add(
                DatasetMetadata(
                    dataset_id=dataset_id, document=document, source=str(path), sha256=sha
                )
            )
            return "created"
        if row.sha256 == sha and row.document == document:
            return "unchanged"
        row.document, row.source, row.sha256 = document, str(path), sha
        return "updated"


def data_use(session, dataset_id: str) -> list[str]:
    """The dataset's data-use conditions (DUO term ids) from its metadata."""
    row = session.get(DatasetMetadata, dataset_id)
    return list((row.document or {}).get("data_use") or []) if row is not None else []


def set_data_use(session, dataset_id: str, terms: list[str]) -> None:
    """Replace the ``data_use`` of the dataset's metadata (the rest of the document
    stays; a dataset without one gets a document holding only these terms)."""
    row = session.get(DatasetMetadata, dataset_id)
    if row is None:
        session.add(
            DatasetMetadata(
                dataset_id=dataset_id, document={"data_use": list(terms)}, source="", sha256=""
            )
        )
    else:
        row.document = {**(row.document or {}), "data_use": list(terms)}


def individual_counts(session, dataset_ids=None) -> dict[str, int]:
    """``{dataset id: individual records}`` of done metadata loads, in one query."""
    from server.beacon.tables import BeaconLoad, BeaconRecord

    q = (
        sa.select(BeaconRecord.dataset_id, sa.func.count())
        .join(BeaconLoad, BeaconLoad.id == BeaconRecord.load_id)
        .where(BeaconRecord.entry_type == "individual", BeaconLoad.status == "done")
        .group_by(BeaconRecord.dataset_id)
    )
    if dataset_ids is not None:
        q = q.where(BeaconRecord.dataset_id.in_(list(dataset_ids)))
    return {did: int(n) for did, n in session.execute(q)}


def _date(value) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def node_agent(settings: Settings) -> dict:
    """The node as publisher and contact of datasets that name none."""
    return {"name": settings.beacon_name, "email": "dataops@localhost", "url": settings.public_url}


def resolve(
    session, settings: Settings, dataset: Dataset, document: dict | None, individuals=None
) -> Metadata:
    """The published metadata of ``dataset``: ``document`` over the defaults
    (``individuals``: its number of individual records, read when not given)."""
    given = dict(document or {})
    values = {
        "title": dataset.name or dataset.id,
        "description": dataset.description
        or f"Dataset {dataset.id} served by the genomeport node {settings.beacon_name}.",
        "keywords": [k for k in ("genomics", dataset.assembly) if k],
        "themes": [HEALTH_THEME],
        "publisher": node_agent(settings),
        "contact": node_agent(settings),
        "access_rights": ACCESS_OF_LEVEL.get(dataset.access, "non_public"),
        "data_use": [],
        "issued": _date(dataset.created),
        "modified": _date(dataset.updated),
        "catalogue": DEFAULT_CATALOGUE,
    }
    if individuals is None:
        individuals = individual_counts(session, [dataset.id])
    n = individuals.get(dataset.id)
    if n is not None:
        if dataset.access != "public":  # as the Beacon's count tier would show it
            from server.beacon.tiers import adjust

            n = adjust(n, settings, exact=False)
        values["number_of_individuals"] = n
    values.update(given)
    values.setdefault(
        "catalogue_title",
        f"{settings.beacon_name} datasets"
        if values["catalogue"] == DEFAULT_CATALOGUE
        else values["catalogue"],
    )
    return Metadata(dataset.id, dataset.access, values, given)


def has_document(session, dataset_id: str) -> bool:
    return session.get(DatasetMetadata, dataset_id) is not None


def documents(session) -> dict[str, dict]:
    """``{dataset id: document}`` of every dataset with a metadata file."""
    query = sa.select(DatasetMetadata.dataset_id, DatasetMetadata.document)
    return {did: doc for did, doc in session.execute(query)}


def of_dataset(session, settings: Settings, dataset_id: str) -> Metadata:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(f"no dataset {dataset_id!r}")
    row = session.get(DatasetMetadata, dataset_id)
    return resolve(session, settings, dataset, row.document if row else None)


def all_metadata(session, settings: Settings) -> list[Metadata]:
    docs = documents(session)
    counts = individual_counts(session)
    rows = session.scalars(sa.select(Dataset).order_by(Dataset.id))
    return [resolve(session, settings, d, docs.get(d.id), counts) for d in rows]


def duo_terms(meta: Metadata) -> list[dict]:
    """The data-use terms as Beacon's ``duoDataUse`` ontology terms."""
    out = []
    for term in meta["data_use"] or []:
        item = {"id": term, "version": "2021-02-23"}
        if term in DUO_LABELS:
            item["label"] = DUO_LABELS[term]
        out.append(item)
    return out


def beacon_fields(meta: Metadata) -> dict:
    """What Beacon ``/datasets`` shows of the metadata (the dataset default schema's
    fields, the rest under ``info``)."""
    out = {
        "name": meta["title"],
        "description": meta["description"],
        "createDateTime": meta["issued"],
        "updateDateTime": meta["modified"],
    }
    duo = duo_terms(meta)
    if duo:
        out["dataUseConditions"] = {"duoDataUse": duo}
    info = {
        k: meta[k]
        for k in (
            "keywords",
            "themes",
            "publisher",
            "contact",
            "licence",
            "access_rights",
            "population_coverage",
            "number_of_individuals",
            "catalogue",
        )
        if meta[k] not in (None, "", [])
    }
    out["info"] = {"metadata": info}
    return out


def as_json(meta: Metadata) -> str:
    return json.dumps(meta.values, indent=2, sort_keys=True)
