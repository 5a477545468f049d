"""Dataset metadata: the file's shape, the defaults, and what a default may tell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import DCTERMS

from server.beacon import tiers
from server.beacon.demo import METADATA
from server.beacon.metadata import load_metadata
from server.catalogue import fdp, metadata
from server.errors import InvalidInput
from server.registry import add_dataset

SEED = Path(__file__).resolve().parents[3] / "seed_data"
INDIVIDUALS = len(json.loads((SEED / "individuals.bff.json").read_text()))


@pytest.mark.parametrize(
    "text,reason",
    [
        ("- a list\n", "must be a mapping"),
        ("title: [unclosed\n", "not YAML or JSON at line"),
        ("colour: blue\n", "unknown key 'colour'"),
        ("keywords: {a: 1}\n", "keywords must be a list of strings"),
        ("publisher: {name: x, phone: 1}\n", "publisher must be a mapping of name, email, url"),
        ("number_of_individuals: many\n", "must be a whole number"),
        ("number_of_individuals: true\n", "must be a whole number"),
    ],
)
def test_malformed_files_are_refused(text, reason):
    with pytest.raises(InvalidInput, match=reason):
        metadata.parse(text)


def test_store_needs_a_dataset_and_replaces_the_file(db, tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("title: one\n")
    with pytest.raises(Exception, match="no dataset"):
        metadata.store(db, "nope", f)
    add_dataset(db, "d1", access="public")
    assert metadata.store(db, "d1", f) == "created"
    assert metadata.store(db, "d1", f) == "unchanged"
    f.write_text("title: two\n")
    assert metadata.store(db, "d1", f) == "updated"
    with db.session() as s:
        from server.settings import Settings

        assert metadata.of_dataset(s, Settings(), "d1")["title"] == "two"


def _individuals_shown(db, settings, dataset_id) -> int:
    with db.session() as s:
        node = fdp.load(s, settings)
        g = fdp.dataset_graph(node, dataset_id)
    d = URIRef(f"{settings.public_url.rstrip('/')}/fdp/dataset/{dataset_id}")
    return int(g.value(d, fdp.HEALTH.numberOfUniqueIndividuals))


def test_default_count_of_a_controlled_dataset_follows_the_count_tier(db, settings, monkeypatch):
    # the public catalogue tells a controlled dataset's size only as the Beacon's
    # count tier would (thresholded, rounded); with that rule switched off it
    # would tell the exact number
    for ds, access in (("open", "public"), ("closed", "controlled")):
        add_dataset(db, ds, access=access)
        load_metadata(db, [SEED / f for f in METADATA], ds, progress=False)
    shown = tiers.adjust(INDIVIDUALS, settings, exact=False)
    assert shown != INDIVIDUALS  # the rounding changes this count
    assert _individuals_shown(db, settings, "open") == INDIVIDUALS
    assert _individuals_shown(db, settings, "closed") == shown
    monkeypatch.setattr(tiers, "adjust", lambda n, s, exact: n)
    assert _individuals_shown(db, settings, "closed") == INDIVIDUALS


def test_text_cannot_inject_triples(db, settings, tmp_path):
    # a title written to close the literal and add a triple stays one literal
    evil = 'x"@en . <http://evil.example/s> <http://evil.example/p> "o'
    f = tmp_path / "m.yaml"
    f.write_text(
        json.dumps({"title": evil, "licence": "https://l.example/> <http://evil.example/p"})
    )
    add_dataset(db, "d2", access="public")
    metadata.store(db, "d2", f)
    with db.session() as s:
        node = fdp.load(s, settings)
        text = fdp.dataset_graph(node, "d2").serialize(format="turtle")
    g = Graph().parse(data=text, format="turtle")
    d = URIRef(f"{settings.public_url.rstrip('/')}/fdp/dataset/d2")
    assert str(g.value(d, DCTERMS.title)) == evil
    assert not [t for t in g if "evil.example/p" in str(t[1])]
    # the licence is no IRI: published as text, which the shapes refuse
    assert "d2" in node.problems and any("licence must be an IRI" in p for p in node.problems["d2"])


def test_cli_add_update_and_check(settings, tmp_path):
    from click.testing import CliRunner

    from server.cli import Ctx, main

    obj = Ctx(settings)
    good, bad = tmp_path / "good.json", tmp_path / "bad.yaml"
    good.write_text(
        json.dumps({"title": "Good", "contact": {"name": "DAC", "email": "a@b.example"}})
    )
    nameless = tmp_path / "nameless.json"
    nameless.write_text(json.dumps({"contact": {"email": "a@b.example"}}))
    bad.write_text("issued: sometime\n")
    run = CliRunner().invoke
    r = run(
        main, ["dataset", "add", "c1", "--access", "controlled", "--metadata", str(good)], obj=obj
    )
    assert r.exit_code == 0, r.output
    assert "created: metadata of c1" in r.output and "c1: published" in r.output
    r = run(main, ["dataset", "update", "c1", "--metadata", str(bad)], obj=obj)
    assert r.exit_code == 0 and "c1: NOT published" in r.output and "dct:issued" in r.output
    with obj.db.session() as s:
        from server.db.tables import Dataset

        assert s.get(Dataset, "c1").access == "controlled"  # update kept it
    assert run(main, ["dataset", "check", "c1"], obj=obj).exit_code == 1
    r = run(main, ["dataset", "update", "c1", "--metadata", str(nameless)], obj=obj)
    assert "the contact needs a name" in r.output
    r = run(main, ["dataset", "update", "nope", "--metadata", str(good)], obj=obj)
    assert r.exit_code == 1 and "no dataset 'nope'" in r.output
