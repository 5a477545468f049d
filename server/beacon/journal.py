"""The load journal shared by every Beacon loader.

A file's content (sha256) identifies a load: loading the same content again
into the same dataset finds a ``done`` journal row and changes nothing; an
interrupted load finds its ``loading`` row and resumes from the last committed
checkpoint. Rows written by a load stay invisible to queries until the journal
row turns ``done``, which happens in the same transaction that retires any
earlier load of the same path.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pysam
import sqlalchemy as sa

from server.beacon.tables import BeaconLoad
from server.errors import InvalidInput, NotFound


class LoadError(InvalidInput):
    """Bad input: names the file, the line (or record index) and the reason."""

    def __init__(self, path: str | Path, where: str, reason: str):
        super().__init__(
            f"{path}: {where}: {reason}",
            detail={"file": str(path), "where": where, "reason": reason},
        )
        self.path = str(path)
        self.where = where
        self.reason = reason


@dataclass
class LoadResult:
    kind: str
    path: str
    dataset_id: str
    status: str  # loaded | unchanged | resumed
    load_id: int
    records: int = 0
    items: int = 0  # variants, records, genes or terms written
    replaced: list[str] = field(default_factory=list)  # genomes replaced
    # seconds spent per phase (variant loads: stage, publish, fold)
    timings: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        if self.status == "unchanged":
            return f"{self.path}: already loaded (load {self.load_id}), nothing changed"
        if self.status == "interrupted":
            return f"{self.path}: interrupted (load {self.load_id}); run again to resume"
        unit = {
            "vcf": "variants",
            "vcf-file": "variants merged",
            "genome": "variants merged",
            "genes": "genes",
            "ontology": "terms",
        }.get(self.kind, "records")
        text = (
            f"{self.path}: {self.status} {self.records} records -> {self.items} {unit}"
            f" (load {self.load_id})"
        )
        if self.replaced:
            text += f"; replaced {', '.join(self.replaced)}"
        return text


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(4 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise NotFound(f"{path}: no such file")
    return p.resolve()


def open_vcf(p: Path) -> pysam.VariantFile:
    """``p`` opened with pysam, or a LoadError that says why it cannot be."""
    try:
        return pysam.VariantFile(str(p))
    except (OSError, ValueError) as exc:
        raise LoadError(p, "file", f"not a VCF/BCF pysam can read: {exc}") from None


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def begin(session, kind: str, dataset_id: str, path: Path, sha256: str) -> tuple[BeaconLoad, bool]:
    """The journal row for this content, and whether it is already done."""
    row = session.execute(
        sa.select(BeaconLoad).where(
            BeaconLoad.kind == kind,
            BeaconLoad.dataset_id == dataset_id,
            BeaconLoad.sha256 == sha256,
        )
    ).scalar_one_or_none()
    if row is not None and row.status == "done":
        return row, True
    if row is not None and row.status == "superseded":
        # content loaded again after something replaced it: a new journal row, so the
        # journal's newest id (the query caches' generation) moves on
        session.delete(row)
        session.flush()
        row = None
    if row is None:
        row = BeaconLoad(
            kind=kind,
            dataset_id=dataset_id,
            path=str(path),
            sha256=sha256,
            status="loading",
            checkpoint=0,
            records=0,
            assembly="",
            max_span=0,
            started=utcnow(),
        )
        session.add(row)
        session.flush()
    else:  # an interrupted load of the same content: resume it
        row.path = str(path)
    return row, False


def earlier_loads(session, row: BeaconLoad) -> list[BeaconLoad]:
    """Done loads of the same kind, dataset and path that ``row`` replaces."""
    return list(
        session.execute(
            sa.select(BeaconLoad).where(
                BeaconLoad.kind == row.kind,
                BeaconLoad.dataset_id == row.dataset_id,
                BeaconLoad.path == row.path,
                BeaconLoad.status == "done",
                BeaconLoad.id != row.id,
            )
        ).scalars()
    )


def visible_loads(session, kind: str, dataset_ids) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {d: [] for d in dataset_ids}
    rows = session.execute(
        sa.select(BeaconLoad.dataset_id, BeaconLoad.id).where(
            BeaconLoad.kind == kind,
            BeaconLoad.status == "done",
            BeaconLoad.dataset_id.in_(list(dataset_ids)),
        )
    )
    for dataset_id, load_id in rows:
        out.setdefault(dataset_id, []).append(load_id)
    return out
