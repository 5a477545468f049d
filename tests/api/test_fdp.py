"""FAIR Data Point: every record walked from /fdp, parsed with rdflib in Turtle
and JSON-LD, validated with pySHACL against the shapes the node serves; an
invalid metadata file keeps its dataset out, and ``dataset check`` says why;
Beacon /datasets answers from the same metadata. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from pyshacl import validate
from rdflib import RDF, Graph, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS

from server.catalogue import fdp, metadata, shapes
from server.cli import Ctx, main
from tests.support.fdp import SEED, populate
from tests.unit.auth.nodes import module_node

LDP = URIRef("http://www.w3.org/ns/ldp#contains")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def node(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fdp-data")
    node = module_node(request, tmp_path_factory, lambda s: s, lambda db: populate(db, tmp))
    yield from node


def get(client, url: str, fmt: str = "turtle") -> Graph:
    accept = {"turtle": "text/turtle", "json-ld": "application/ld+json"}[fmt]
    path = url.split("://", 1)[1].split("/", 1)[1]
    r = client.get("/" + path, headers={"Accept": accept})
    assert r.status_code == 200, (url, r.text)
    assert r.headers["content-type"].startswith(accept)
    return Graph().parse(data=r.text, format=fmt)


def walk(client, root: str) -> dict[str, Graph]:
    """Every record reachable from the root through ldp:contains, as Turtle."""
    seen: dict[str, Graph] = {}
    queue = [root]
    while queue:
        url = queue.pop(0)
        if url in seen:
            continue
        seen[url] = g = get(client, url)
        queue += [str(o) for o in g.objects(None, LDP)]
    return seen


def served_shapes(client, level: str) -> Graph:
    r = client.get(f"/fdp/shapes/{level}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/turtle")
    return Graph().parse(data=r.text, format="turtle")


LEVEL_OF = {
    URIRef("https://w3id.org/fdp/fdp-o#FAIRDataPoint"): "fdp",
    DCAT.Catalog: "catalog",
    DCAT.Dataset: "dataset",
    DCAT.Distribution: "distribution",
}


def level_of(g: Graph, url: str) -> str:
    for t in g.objects(URIRef(url), RDF.type):
        if t in LEVEL_OF:
            return LEVEL_OF[t]
    raise AssertionError(f"{url} has no FDP level type")


class TestGetRoot:
    def test_every_record_parses_and_conforms_returns_200(self, node):
        c = node.client
        base = node.settings.public_url.rstrip("/")
        records = walk(c, base + "/fdp")
        services = [f"{base}/fdp/dataservice/{api}" for api in fdp.SERVICES]
        shapes_of = {lvl: served_shapes(c, lvl) for lvl in shapes.LEVELS}
        kinds = {}
        for url in list(records) + services:
            g = records.get(url) or get(c, url)
            level = "dataservice" if url in services else level_of(g, url)
            kinds.setdefault(level, []).append(url)
            conforms, _, text = validate(g, shacl_graph=shapes_of[level], inference="none")
            assert conforms, (url, text)
            # the same record in JSON-LD is the same graph
            assert isomorphic(g, get(c, url, "json-ld")), url
            # the record names its profile, and the profile names the served shapes
            profile = g.value(URIRef(url), DCTERMS.conformsTo)
            if level != "dataservice":
                assert str(profile) == f"{base}/fdp/profile/{level}"
                p = get(c, str(profile))
                artifact = URIRef("http://www.w3.org/ns/dx/prof/hasArtifact")
                assert URIRef(f"{base}/fdp/shapes/{level}") in set(p.objects(None, artifact))
        # the profiles and shapes too, in both serializations
        for level in shapes.LEVELS:
            for kind in ("profile", "shapes"):
                url = f"{base}/fdp/{kind}/{level}"
                assert isomorphic(get(c, url), get(c, url, "json-ld")), url
        datasets = {u.rsplit("/", 1)[1] for u in kinds["dataset"]}
        assert datasets == {"demo", "ctl"}  # "bad" does not conform
        assert len(kinds["catalog"]) == 2  # the node's and dk-national
        # demo has files (htsget and DRS) and the Beacon; ctl only the Beacon
        dists = sorted(u.split("/fdp/distribution/")[1] for u in kinds["distribution"])
        assert dists == ["ctl/beacon", "demo/beacon", "demo/drs", "demo/htsget"]

    def test_dataset_record_carries_the_metadata_file_returns_200(self, node):
        base = node.settings.public_url.rstrip("/")
        d = URIRef(f"{base}/fdp/dataset/ctl")
        g = get(node.client, str(d), "json-ld")
        assert str(g.value(d, DCTERMS.title)) == "Danish reference cohort"
        assert str(g.value(d, DCTERMS.accessRights)).endswith("/access-right/NON_PUBLIC")
        rights = g.value(d, DCTERMS.rights)
        duo = {
            str(o)
            for o in g.objects(rights, URIRef("http://www.w3.org/2000/01/rdf-schema#seeAlso"))
        }
        assert duo == {metadata.DUO_IRI + "0000042", metadata.DUO_IRI + "0000019"}
        assert str(g.value(d, DCTERMS.isPartOf)) == f"{base}/fdp/catalog/dk-national"

    def test_defaults_count_individuals_returns_200(self, node):
        import json

        base = node.settings.public_url.rstrip("/")
        d = URIRef(f"{base}/fdp/dataset/demo")
        g = get(node.client, str(d))
        n = g.value(d, URIRef("http://healthdataportal.eu/ns/health#numberOfUniqueIndividuals"))
        individuals = json.loads((SEED / "individuals.bff.json").read_text())
        assert int(n) == len(individuals)
        assert str(g.value(d, DCTERMS.title)) == "Demo cohort"

    def test_unknown_accept_returns_406(self, node):
        r = node.client.get("/fdp", headers={"Accept": "image/png"})
        assert r.status_code == 406

    def test_format_parameter_overrides_accept_returns_200(self, node):
        r = node.client.get("/fdp?format=jsonld", headers={"Accept": "text/turtle"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/ld+json")


class TestInvalidMetadata:
    def test_invalid_dataset_is_not_published_returns_404(self, node):
        c = node.client
        assert c.get("/fdp/dataset/bad").status_code == 404
        assert c.get("/fdp/distribution/bad/beacon").status_code == 404
        base = node.settings.public_url.rstrip("/")
        cat = get(c, f"{base}/fdp/catalog/genomeport")
        listed = {str(o) for o in cat.objects(None, DCAT.dataset)}
        assert f"{base}/fdp/dataset/demo" in listed and f"{base}/fdp/dataset/bad" not in listed

    def test_check_says_why_returns_exit_1(self, node):
        r = CliRunner().invoke(main, ["dataset", "check", "bad"], obj=Ctx(node.settings))
        assert r.exit_code == 1, r.output
        assert "bad: NOT published" in r.output
        assert "vcard:hasEmail" in r.output and "e-mail must be an address" in r.output
        assert "dct:issued" in r.output and "must be a date" in r.output
        assert "data_use terms must be DUO terms" in r.output
        ok = CliRunner().invoke(main, ["dataset", "check", "ctl", "demo"], obj=Ctx(node.settings))
        assert ok.exit_code == 0 and ok.output.count("published in the FAIR Data Point") == 2

    def test_the_served_shapes_are_what_rejects_it(self, node, monkeypatch):
        # the record fails pySHACL against the served shapes; with shape checking
        # switched off the same record would be published
        with node.db.session() as session:
            n = fdp.load(session, node.settings)
            g = fdp.dataset_graph(n, "bad")
        conforms, _, _ = validate(g, shacl_graph=served_shapes(node.client, "dataset"))
        assert not conforms
        monkeypatch.setattr(shapes, "problems", lambda level, data: [])
        monkeypatch.setattr(fdp, "_DATASETS", {})  # no verdict kept from before
        assert node.client.get("/fdp/dataset/bad").status_code == 200


class TestMetadataFile:
    def test_unknown_key_is_refused_and_nothing_stored(self, node, tmp_path):
        f = tmp_path / "m.yaml"
        f.write_text("title: x\ncolour: blue\n")
        r = CliRunner().invoke(
            main,
            ["dataset", "update", "demo", "--metadata", str(f)],
            obj=Ctx(node.settings),
        )
        assert r.exit_code == 1 and "unknown key 'colour'" in r.output
        with node.db.session() as session:
            assert not metadata.has_document(session, "demo")

    def test_json_file_is_read_like_yaml(self, tmp_path):
        f = tmp_path / "m.json"
        f.write_text('{"title": "T", "license": "https://x.example/l", "data_use": "DUO:0000042"}')
        doc, _ = metadata.read_file(f)
        assert doc == {"title": "T", "licence": "https://x.example/l", "data_use": ["DUO:0000042"]}


class TestBeaconDatasets:
    def test_datasets_answer_from_the_metadata_returns_200(self, node):
        body = {"meta": {"apiVersion": "2.0"}, "query": {"requestedGranularity": "record"}}
        r = node.client.post("/beacon/v2/datasets", json=body)
        assert r.status_code == 200, r.text
        docs = {d["id"]: d for d in r.json()["response"]["collections"]}
        assert docs["ctl"]["name"] == "Danish reference cohort"
        assert [t["id"] for t in docs["ctl"]["dataUseConditions"]["duoDataUse"]] == [
            "DUO:0000042",
            "DUO:0000019",
        ]
        info = docs["ctl"]["info"]["metadata"]
        assert info["contact"]["email"] == "dac@genome.example.dk"
        assert info["number_of_individuals"] == 3

    def test_services_and_landing_name_the_fdp_returns_200(self, node):
        services = node.client.get("/services").json()
        fdp_service = [s for s in services if s["type"]["artifact"] == "fdp"]
        assert fdp_service and fdp_service[0]["url"].endswith("/fdp")
        page = node.client.get("/", headers={"Accept": "text/html"}).text
        assert 'href="' + node.settings.public_url.rstrip("/") + '/fdp"' in page
