"""``genomeport beacon load-metadata``: BFF JSON and Phenopackets v2.

Beacon-Friendly-Format files are JSON arrays of records of one entry type
(``individuals.json``, ``biosamples.json``, ``runs.json``, ``analyses.json``,
``cohorts.json``, ``datasets.json``); a Phenopacket (a JSON object, optionally
wrapped as ``{"phenopacket": ...}``) becomes an individual plus its biosamples.

Each file loads in one transaction: it is all there, or none of it is. For
filters, every record is indexed with its ontology terms (descendant-aware
through the ontology closure), custom ``field:label`` terms and alphanumeric
values (ages as ISO 8601 durations in days, measurements, labels, dates).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import sqlalchemy as sa
from tqdm import tqdm

from server.beacon import journal
from server.beacon.cpr import find_in_document, looks_like_cpr, text_may_contain
from server.beacon.journal import LoadError, LoadResult
from server.beacon.tables import BeaconLoad, BeaconRecord, BeaconRecordTerm, BeaconRecordValue
from server.beacon.vcf import bulk_insert
from server.db.tables import Dataset
from server.errors import NotFound

ENTRY_TYPES = ("individual", "biosample", "run", "analysis", "cohort", "dataset")
_FILE_TYPES = {
    "individuals": "individual",
    "individual": "individual",
    "biosamples": "biosample",
    "biosample": "biosample",
    "runs": "run",
    "run": "run",
    "analyses": "analysis",
    "analysis": "analysis",
    "cohorts": "cohort",
    "cohort": "cohort",
    "datasets": "dataset",
    "dataset": "dataset",
}
REQUIRED = {
    "individual": ("id", "sex"),
    "biosample": ("id", "biosampleStatus", "sampleOriginType"),
    "run": ("id", "biosampleId", "runDate"),
    "analysis": ("id", "analysisDate", "pipelineName"),
    "cohort": ("id", "name", "cohortType"),
    "dataset": ("id", "name"),
}
_CURIE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*:[^\s:][^\s]*$")
_DURATION = re.compile(
    r"^P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
_SKIP_TERMS_UNDER = {"unit", "info", "referenceRange"}


def duration_days(text: str) -> float | None:
    """ISO 8601 duration (``P40Y1M1D``) in days; None when it is not one."""
    if not isinstance(text, str) or text in ("P", "PT"):
        return None
    m = _DURATION.match(text.strip())
    if not m or not any(m.groups()):
        return None
    y, mo, w, d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return y * 365.25 + mo * 30.4375 + w * 7 + d + h / 24 + mi / 1440 + s / 86400


# ------------------------------------------------------------------ phenopackets
_SEX = {
    "MALE": {"id": "NCIT:C20197", "label": "male"},
    "FEMALE": {"id": "NCIT:C16576", "label": "female"},
    "OTHER_SEX": {"id": "NCIT:C45908", "label": "intersex"},
    "UNKNOWN_SEX": {"id": "NCIT:C17998", "label": "unknown"},
}
_UNKNOWN = {"id": "NCIT:C17998", "label": "Unknown"}


def _time_element(value):
    if isinstance(value, dict) and "age" in value and isinstance(value["age"], dict):
        return {"iso8601duration": value["age"].get("iso8601duration", "")}
    return value


def phenopacket_records(doc: dict) -> list[tuple[str, dict]]:
    """An individual (and its biosamples) in the Beacon v2 model from a Phenopacket."""
    pxf = doc.get("phenopacket", doc)
    subject = pxf.get("subject") or {}
    ind_id = subject.get("id") or pxf.get("id")
    ind: dict = {
        "id": ind_id,
        "sex": _SEX.get(str(subject.get("sex", "UNKNOWN_SEX")).upper(), _SEX["UNKNOWN_SEX"]),
    }
    if subject.get("karyotypicSex"):
        ind["karyotypicSex"] = subject["karyotypicSex"]
    features = []
    for f in pxf.get("phenotypicFeatures") or []:
        item = {"featureType": f.get("type")}
        if f.get("excluded") or f.get("negated"):
            item["excluded"] = True
        if f.get("onset"):
            item["onset"] = _time_element(f["onset"])
        if f.get("severity"):
            item["severity"] = f["severity"]
        features.append(item)
    if features:
        ind["phenotypicFeatures"] = features
    diseases = []
    for d in pxf.get("diseases") or []:
        item = {"diseaseCode": d.get("term")}
        if d.get("onset"):
            item["ageOfOnset"] = _time_element(d["onset"])
        diseases.append(item)
    if diseases:
        ind["diseases"] = diseases
    info = {"phenopacketId": pxf.get("id")}
    if subject.get("timeAtLastEncounter"):
        info["timeAtLastEncounter"] = _time_element(subject["timeAtLastEncounter"])
    ind["info"] = info
    out = [("individual", ind)]
    for b in pxf.get("biosamples") or []:
        out.append(
            (
                "biosample",
                {
                    "id": b.get("id"),
                    "individualId": b.get("individualId") or ind_id,
                    "biosampleStatus": b.get("tumorProgression") or _UNKNOWN,
                    "sampleOriginType": b.get("sampledTissue") or _UNKNOWN,
                    **(
                        {"collectionMoment": b["timeOfCollection"]["age"]["iso8601duration"]}
                        if isinstance(b.get("timeOfCollection"), dict)
                        and isinstance(b["timeOfCollection"].get("age"), dict)
                        else {}
                    ),
                },
            )
        )
    return out


# ------------------------------------------------------------------ indexing
def index_record(entry_type: str, doc: dict):
    """``(terms, values)``: terms as (term, label, kind), values as (field, num, text)."""
    terms: dict[str, tuple[str, str]] = {}
    values: list[tuple[str, float | None, str]] = []

    def walk(node, key: str, top: str) -> None:
        if isinstance(node, dict):
            if node.get("excluded") is True or node.get("negated") is True:
                return  # an excluded phenotype is not a phenotype of the record
            if key in _SKIP_TERMS_UNDER:
                return
            nid = node.get("id")
            if key and isinstance(nid, str) and _CURIE.match(nid):
                label = node.get("label") if isinstance(node.get("label"), str) else ""
                terms.setdefault(nid, (label, "ontology"))
            if isinstance(node.get("iso8601duration"), str):
                days = duration_days(node["iso8601duration"])
                if days is not None:
                    values.append(("age", days, node["iso8601duration"]))
                    if key and key != "age":
                        values.append((key, days, node["iso8601duration"]))
            assay = node.get("assayCode")
            mv = node.get("measurementValue")
            if isinstance(assay, dict) and isinstance(mv, dict):
                num = mv.get("value")
                if isinstance(num, (int, float)) and not isinstance(num, bool):
                    for f in (assay.get("id"), assay.get("label")):
                        if isinstance(f, str) and f:
                            values.append((f, float(num), ""))
            for k, v in node.items():
                walk(v, k, top or k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key, top)

    for key, value in doc.items():
        if key == "id":
            continue
        walk(value, key, key)
        if isinstance(value, dict) and isinstance(value.get("id"), str):
            label = value.get("label") if isinstance(value.get("label"), str) else ""
            values.append((key, None, value["id"]))
            if label:
                values.append((key, None, label))
                terms.setdefault(f"{key}:{label}", (label, "custom"))
        elif isinstance(value, bool):
            values.append((key, None, str(value).lower()))
        elif isinstance(value, (int, float)):
            values.append((key, float(value), str(value)))
        elif isinstance(value, str) and key not in ("individualId", "biosampleId", "runId"):
            days = duration_days(value)
            values.append((key, days, value))
            if days is not None and key == "collectionMoment":
                values.append(("age", days, value))
            if len(value) <= 64:
                terms.setdefault(f"{key}:{value}", (value, "custom"))
    return (
        [(t, label[:512], kind) for t, (label, kind) in terms.items()],
        [(f[:256], n, t[:512]) for f, n, t in values],
    )


# ------------------------------------------------------------------ loading
def _read_records(p: Path, entry_type: str | None) -> tuple[list[tuple[str, dict]], bool]:
    """The records of a file, and whether any text in it could look like a CPR number."""
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LoadError(p, f"byte {exc.start}", "not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(p, f"line {exc.lineno}, column {exc.colno}", exc.msg) from None
    if isinstance(data, dict) and (
        "phenopacket" in data or "phenotypicFeatures" in data or "subject" in data
    ):
        return phenopacket_records(data), text_may_contain(text)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise LoadError(p, "line 1", "expected a JSON array of records or a Phenopacket")
    if entry_type is None:
        entry_type = _FILE_TYPES.get(p.name.split(".")[0].lower())
    if entry_type is None:
        raise LoadError(
            p,
            "file name",
            "cannot tell the entry type from the name; pass "
            "--entry-type (individuals, biosamples, runs, analyses, "
            "cohorts, datasets)",
        )
    return [(entry_type, rec) for rec in data], text_may_contain(text)


def _check(p: Path, i: int, entry_type: str, rec, suspicious: bool = True) -> None:
    where = f"record {i + 1}"
    if not isinstance(rec, dict):
        raise LoadError(p, where, "a record must be a JSON object")
    for field in REQUIRED[entry_type]:
        if rec.get(field) in (None, "", [], {}):
            raise LoadError(p, where, f"{entry_type} has no {field!r}")
    if not isinstance(rec["id"], str) or len(rec["id"]) > 256:
        raise LoadError(p, where, "'id' must be a string of at most 256 characters")
    for key in ("id", "individualId", "biosampleId", "runId"):
        if isinstance(rec.get(key), str) and looks_like_cpr(rec[key]):
            raise LoadError(p, where, f"{key} {rec[key]!r} looks like a CPR number; refused")
    path = find_in_document(rec) if suspicious else None
    if path:
        raise LoadError(p, where, f"value at {path} looks like a CPR number; refused")


def load_metadata(
    db, paths, dataset_id: str, *, entry_type: str | None = None, progress: bool = True
) -> list[LoadResult]:
    """Load each file in its own transaction; files already loaded are skipped."""
    if entry_type is not None:
        entry_type = _FILE_TYPES.get(entry_type.lower(), entry_type)
        if entry_type not in ENTRY_TYPES:
            raise LoadError("--entry-type", "option", f"unknown entry type {entry_type!r}")
    results = []
    with db.session() as s:
        if s.get(Dataset, dataset_id) is None:
            raise NotFound(
                f"dataset {dataset_id!r} is not registered (add it with `genomeport dataset add`)"
            )
    for path in tqdm(list(paths), desc="load-metadata", unit=" file", disable=not progress):
        p = journal.check_file(path)
        sha = journal.file_sha256(p)
        records, suspicious = _read_records(p, entry_type)
        rows, terms, values = [], [], []
        seen: set[tuple[str, str]] = set()
        for i, (etype, rec) in enumerate(records):
            _check(p, i, etype, rec, suspicious)
            if (etype, rec["id"]) in seen:
                raise LoadError(p, f"record {i + 1}", f"duplicate {etype} id {rec['id']!r}")
            seen.add((etype, rec["id"]))
            ind = rec["id"] if etype == "individual" else rec.get("individualId") or ""
            bios = rec["id"] if etype == "biosample" else rec.get("biosampleId") or ""
            rows.append(
                {
                    "dataset_id": dataset_id,
                    "entry_type": etype,
                    "id": rec["id"],
                    "individual_id": str(ind)[:256],
                    "biosample_id": str(bios)[:256],
                    "document": rec,
                }
            )
            t, v = index_record(etype, rec)
            for term, label, kind in t:
                terms.append(
                    {
                        "dataset_id": dataset_id,
                        "entry_type": etype,
                        "record_id": rec["id"],
                        "term": term[:256],
                        "label": label,
                        "kind": kind,
                    }
                )
            for field, num, text in v:
                values.append(
                    {
                        "dataset_id": dataset_id,
                        "entry_type": etype,
                        "record_id": rec["id"],
                        "field": field,
                        "num": num,
                        "text": text,
                    }
                )
        with db.session() as s:
            row, done = journal.begin(s, "metadata", dataset_id, p, sha)
            if done:
                results.append(
                    LoadResult("metadata", str(p), dataset_id, "unchanged", row.id, row.records)
                )
                continue
            old_ids = [o.id for o in journal.earlier_loads(s, row)]
            replaced = _ids_of(s, dataset_id, old_ids)
            by_type: dict[str, list[str]] = {}
            for etype, rid in seen | replaced:
                by_type.setdefault(etype, []).append(rid)
            for etype, ids in by_type.items():
                for chunk in _chunks(ids, 500):
                    for table in (BeaconRecordTerm, BeaconRecordValue):
                        s.execute(
                            sa.delete(table).where(
                                table.dataset_id == dataset_id,
                                table.entry_type == etype,
                                table.record_id.in_(chunk),
                            )
                        )
                    s.execute(
                        sa.delete(BeaconRecord).where(
                            BeaconRecord.dataset_id == dataset_id,
                            BeaconRecord.entry_type == etype,
                            BeaconRecord.id.in_(chunk),
                        )
                    )
            for r in rows:
                r["load_id"] = row.id
            if rows:
                s.execute(BeaconRecord.__table__.insert(), rows)
            if terms:
                bulk_insert(s, BeaconRecordTerm.__table__, terms)
            if values:
                bulk_insert(s, BeaconRecordValue.__table__, values)
            for o in journal.earlier_loads(s, row):
                o.status = "superseded"
            row.status = "done"
            row.records = row.checkpoint = len(rows)
            row.finished = journal.utcnow()
            results.append(
                LoadResult("metadata", str(p), dataset_id, "loaded", row.id, len(rows), len(rows))
            )
    return results


def _ids_of(s, dataset_id: str, load_ids: list[int]) -> set[tuple[str, str]]:
    if not load_ids:
        return set()
    return set(
        s.execute(
            sa.select(BeaconRecord.entry_type, BeaconRecord.id).where(
                BeaconRecord.dataset_id == dataset_id, BeaconRecord.load_id.in_(load_ids)
            )
        ).all()
    )


def _chunks(items, n):
    for i in range(0, len(items), n):
        yield items[i : i + n]


__all__ = ["load_metadata", "phenopacket_records", "index_record", "duration_days", "BeaconLoad"]
