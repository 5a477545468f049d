"""Beacon v2 conformance, through a real gunicorn server (2 workers) on SQLite and
PostgreSQL: collections, every cross-entry endpoint of the specification's
default beaconMap, bracket and trimmed-indel queries, assembly accessions,
gene ids, PATO sex terms, request warnings, bad input answered with
beaconErrorResponse, and v2.2 allele frequencies checked against pysam.
Every response is validated against the Beacon v2 JSON schemas."""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict
from functools import cache, lru_cache

import httpx
import pysam
import pytest

from tests.api.test_beacon import KG_VCF, SHARED, populate, variants_of
from tests.conftest import start_server, stop_server
from tests.unit.auth.nodes import module_node
from tests.unit.beacon.schemas import (
    ENTITY_DIRS,
    ROOT,
    validate_document,
    validate_error,
    validate_response,
)

BASE = "/beacon/v2"
BFF = SHARED / "beacon" / "bff"
SPEC_MAP = ROOT / "models/json/beacon-v2-default-model/beaconMap.json"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("conformance-data")
    for node in module_node(
        request,
        tmp_path_factory,
        lambda s: s.with_overrides(beacon_rate_per_minute=0, beacon_max_limit=50),
        lambda db: populate(db, tmp),
    ):
        live = start_server(node.settings, workers=2)
        try:
            with httpx.Client(base_url=live.url + BASE, timeout=60) as client:
                yield client
        finally:
            stop_server(live)


def _get(client, path, entry=None, **params):
    r = client.get(path, params=params)
    assert r.status_code == 200, (path, r.text)
    body = r.json()
    parts = path.strip("/").split("/")
    validate_response(body, entry or (parts[-1] if parts[-1] in ENTITY_DIRS else parts[0]))
    return body


def _post(client, path, query: dict, entry=None):
    r = client.post(path, json={"meta": {"apiVersion": "v2.0"}, "query": query})
    assert r.status_code == 200, (path, r.text)
    body = r.json()
    parts = path.strip("/").split("/")
    validate_response(body, entry or (parts[-1] if parts[-1] in ENTITY_DIRS else parts[0]))
    return body


def count(body) -> int:
    return body["responseSummary"]["numTotalResults"]


@cache
def bff(name: str) -> list[dict]:
    return json.loads((BFF / f"{name}.json").read_text())


def _first_variant_id(client, **params) -> str:
    body = _get(
        client, "/g_variants", requestedGranularity="record", datasetIds="kg", limit=1, **params
    )
    return body["response"]["resultSets"][0]["results"][0]["variantInternalId"]


# ---------------------------------------------------------------- collections


def kg_count(server, reference: str, start: str, end: str) -> int:
    """The count answer of a GET /g_variants range query (``start``/``end`` as
    "a,b" brackets) on the kg dataset."""
    body = _get(
        server,
        "/g_variants",
        requestedGranularity="count",
        referenceName=reference,
        start=start,
        end=end,
        datasetIds="kg",
    )
    return count(body)


class TestCollections:
    def test_datasets_are_collections_returns_200(self, server):
        body = _get(server, "/datasets", requestedGranularity="record")
        ids = [c["id"] for c in body["response"]["collections"]]
        # a collection describes a dataset, not a person: listed to anonymous callers too
        assert {"kg", "demo", "ctl", "ann"} <= set(ids)
        assert body["responseSummary"] == {
            "exists": True,
            "numTotalResults": len(ids),
            "countPrecision": "exact",
        }
        one = _get(server, "/datasets/kg", requestedGranularity="count")
        assert [c["id"] for c in one["response"]["collections"]] == ["kg"]
        assert one["response"]["collections"][0]["info"]["accessLevel"] == "public"

    def test_cohorts_are_collections_returns_200(self, server):
        body = _get(server, "/cohorts", requestedGranularity="record", datasetIds="kg")
        want = [c["id"] for c in bff("cohorts")]
        assert [c["id"] for c in body["response"]["collections"]] == want
        one = _get(server, f"/cohorts/{want[0]}", requestedGranularity="record", datasetIds="kg")
        assert one["response"]["collections"][0]["id"] == want[0]

    def test_collections_paginate_across_datasets_returns_200(self, server):
        every = [
            c["id"]
            for c in _get(server, "/datasets", requestedGranularity="record")["response"][
                "collections"
            ]
        ]
        pages = []
        for skip in range(len(every)):
            body = _get(server, "/datasets", requestedGranularity="record", limit=1, skip=skip)
            pages += [c["id"] for c in body["response"]["collections"]]
        assert pages == every

    def test_conditions_on_collections_only_at_record_tier_returns_200(self, server):
        _, rows = variants_of(KG_VCF)
        chrom, start, end, ref, alt, carriers = rows[0]
        body = _get(
            server,
            "/datasets",
            requestedGranularity="record",
            referenceName="22",
            start=str(start),
            alternateBases=alt,
            datasetIds="kg,ctl",
        )
        assert [c["id"] for c in body["response"]["collections"]] == ["kg"]
        assert any("ctl" in w for w in body["info"]["warnings"])

    @pytest.mark.parametrize("granularity", ["boolean", "count", "record"])
    def test_include_none_keeps_response_returns_200(self, server, granularity):
        body = _get(
            server,
            "/individuals",
            requestedGranularity=granularity,
            datasetIds="kg",
            includeResultsetResponses="NONE",
        )
        if granularity == "record":
            assert body["response"] == {"resultSets": []}
        post = _post(
            server,
            "/individuals",
            {
                "requestedGranularity": granularity,
                "includeResultsetResponses": "NONE",
                "requestParameters": {"datasetIds": ["kg"]},
            },
        )
        assert post.get("response") == body.get("response")
        none = _get(
            server, "/datasets", requestedGranularity="record", includeResultsetResponses="NONE"
        )
        assert none["response"] == {"collections": []}


# ---------------------------------------------------------------- cross-entry endpoints
def _ids(server) -> dict[str, str]:
    return {
        "g_variants": _first_variant_id(
            server, referenceName="22", start="10516172", end="10600000"
        ),
        "individuals": "HG00096",
        "biosamples": "HG00096",
        "runs": "SRR00000001",
        "analyses": "UK1_analysisId_1",
        "cohorts": bff("cohorts")[0]["id"],
        "datasets": "kg",
    }


class TestCrossEntry:
    def test_every_default_map_endpoint_answers_returns_200(self, server):
        spec = json.loads(SPEC_MAP.read_text())["endpointSets"]
        ours = server.get("/map").json()["response"]["endpointSets"]
        validate_document(server.get("/map").json(), "beaconMapResponse")
        ids = _ids(server)
        checked = 0
        for _entity, ep in spec.items():
            entry = ep["rootUrl"].rsplit("/", 1)[1]
            mine = next(e for e in ours.values() if e["rootUrl"].endswith("/" + entry))
            want = {e["url"].split("exampleBeacons.org", 1)[1] for e in ep["endpoints"].values()}
            have = {e["url"].split(BASE, 1)[1] for e in mine["endpoints"].values()}
            assert want <= have, (entry, want - have)
            paths = sorted(want) + (
                [ep["filteringTermsUrl"].split("exampleBeacons.org")[1]]
                if "filteringTermsUrl" in ep
                else []
            )
            for path in paths:
                path = path.replace("{id}", ids[entry])
                for granularity in ("boolean", "count", "record"):
                    if path.endswith("filtering_terms"):
                        r = server.get(path)
                        assert r.status_code == 200, (path, r.text)
                        validate_document(r.json(), "beaconFilteringTermsResponse")
                        break
                    _get(server, path, requestedGranularity=granularity, datasetIds="kg")
                    checked += 1
        assert checked == 3 * 24  # the default map's 24 cross-entry endpoints

    def test_individual_runs_biosamples_analyses_returns_200(self, server):
        for target, source in (
            ("runs", bff("runs")),
            ("biosamples", bff("biosamples")),
            ("analyses", bff("analyses")),
        ):
            want = sorted(r["id"] for r in source if r.get("individualId") == "HG00096")
            body = _get(
                server,
                f"/individuals/HG00096/{target}",
                requestedGranularity="record",
                datasetIds="kg",
            )
            got = sorted(r["id"] for r in body["response"]["resultSets"][0]["results"])
            assert got == want and want, target

    def test_biosample_analyses_and_cohort_variants_returns_200(self, server):
        want = sorted(a["id"] for a in bff("analyses") if a.get("biosampleId") == "HG00096")
        body = _get(
            server, "/biosamples/HG00096/analyses", requestedGranularity="record", datasetIds="kg"
        )
        assert sorted(r["id"] for r in body["response"]["resultSets"][0]["results"]) == want
        _, rows = variants_of(KG_VCF)
        cohort = bff("cohorts")[0]["id"]
        body = _get(
            server, f"/cohorts/{cohort}/g_variants", requestedGranularity="count", datasetIds="kg"
        )
        assert count(body) == len(rows)  # the cohort is the whole dataset
        body = _get(server, "/datasets/kg/individuals", requestedGranularity="count")
        assert count(body) == len(bff("individuals"))

    def test_variant_runs_are_carriers_runs_returns_200(self, server):
        _, rows = variants_of(KG_VCF)
        row = next(r for r in rows if 0 < len(r[5]) < 30)
        vid = _first_variant_id(
            server,
            referenceName="22",
            start=str(row[1]),
            referenceBases=row[3],
            alternateBases=row[4],
        )
        body = _get(
            server, f"/g_variants/{vid}/runs", requestedGranularity="count", datasetIds="kg"
        )
        assert count(body) == sum(1 for r in bff("runs") if r["individualId"] in row[5])

    @pytest.mark.parametrize("entry", list(ENTITY_DIRS))
    def test_entry_filtering_terms_returns_200(self, server, entry):
        r = server.get(f"/{entry}/filtering_terms")
        assert r.status_code == 200, r.text
        validate_document(r.json(), "beaconFilteringTermsResponse")
        terms = r.json()["response"]["filteringTerms"]
        assert all(entry in t["scopes"] for t in terms)
        if entry == "individuals":
            assert {"NCIT:C20197", "ICD10:J40"} <= {t["id"] for t in terms}


# ---------------------------------------------------------------- genomic queries
class TestGenomic:
    def test_bracket_one_position_recipe_returns_200(self, server):
        _, rows = variants_of(KG_VCF)
        rng = random.Random(17)
        for _chrom, start, end, _ref, _alt, _ in rng.sample(rows, 6):
            want = sum(1 for r in rows if r[1] == start and r[2] == end)
            assert (
                kg_count(server, "chr22", f"{start},{start + 1}", f"{end},{end + 1}") == want >= 1
            )
            post = _post(
                server,
                "/g_variants",
                {
                    "requestedGranularity": "count",
                    "requestParameters": {
                        "referenceName": "chr22",
                        "start": [start, start + 1],
                        "end": [end, end + 1],
                        "datasetIds": ["kg"],
                    },
                },
            )
            assert count(post) == want
        lo = min(r[1] for r in rows)
        assert kg_count(server, "22", f"{lo},{lo + 5000}", f"{lo},{lo + 5000}") == sum(
            1 for r in rows if lo <= r[1] < lo + 5000 and lo <= r[2] < lo + 5000
        )
        r = server.get(
            "/g_variants",
            params={"referenceName": "22", "start": f"{lo},{lo}", "end": f"{lo},{lo + 1}"},
        )
        assert r.status_code == 400
        validate_error(r.json())

    def test_trimmed_deletion_and_hgvs_with_bases_returns_200(self, server):
        _, rows = variants_of(KG_VCF)
        dels = [r for r in rows if len(r[3]) > 1 and len(r[4]) == 1 and r[3][0] == r[4]]
        assert any(r[1] == 10686081 and r[3] == "TATA" for r in dels)
        for _chrom, start, _end, ref, alt, _ in dels[:5] + [r for r in dels if r[1] == 10686081]:
            vcf_form = _first_variant_id(
                server, referenceName="22", start=str(start), referenceBases=ref, alternateBases=alt
            )
            deleted = ref[1:]
            trimmed = {
                "referenceName": "22",
                "start": str(start + 1),
                "referenceBases": deleted,
                "alternateBases": "",
            }
            body = _get(
                server, "/g_variants", requestedGranularity="record", datasetIds="kg", **trimmed
            )
            assert [
                v["variantInternalId"] for v in body["response"]["resultSets"][0]["results"]
            ] == [vcf_form]
            post = _post(
                server,
                "/g_variants",
                {
                    "requestedGranularity": "record",
                    "requestParameters": {**trimmed, "start": [start + 1], "datasetIds": ["kg"]},
                },
            )
            assert post["response"] == body["response"]
            first, last = start + 2, start + 1 + len(deleted)  # HGVS: 1-based, closed
            span = f"{first}" if first == last else f"{first}_{last}"
            for hgvs in (f"NC_000022.11:g.{span}del{deleted}", f"NC_000022.11:g.{span}del"):
                body = _get(
                    server,
                    "/g_variants",
                    requestedGranularity="record",
                    datasetIds="kg",
                    genomicAlleleShortForm=hgvs,
                )
                assert [
                    v["variantInternalId"] for v in body["response"]["resultSets"][0]["results"]
                ] == [vcf_form], hgvs
        r = server.get(
            "/g_variants",
            params={"genomicAlleleShortForm": "NC_000022.11:g.10686083_10686085delAT"},
        )
        assert r.status_code == 400
        validate_error(r.json())

    @pytest.mark.parametrize(
        "accession",
        [
            "GCF_000001405.26",
            "GCA_000001405.15",
            "GCF_000001405.40",
            "GCA_000001405.29",
            "gcf_000001405.39",
        ],
    )
    def test_grch38_accessions_are_grch38_returns_200(self, server, accession):
        params = {
            "referenceName": "22",
            "start": "10500000",
            "end": "10700000",
            "datasetIds": "kg",
            "requestedGranularity": "count",
        }
        want = count(_get(server, "/g_variants", assemblyId="GRCh38", **params))
        assert count(_get(server, "/g_variants", assemblyId=accession, **params)) == want > 0

    def test_grch37_accession_is_refused_returns_400(self, server):
        r = server.get(
            "/g_variants",
            params={
                "referenceName": "22",
                "start": "100",
                "end": "200",
                "assemblyId": "GCF_000001405.25",
                "datasetIds": "kg",
            },
        )
        assert r.status_code == 400 and "GRCh37" in r.json()["error"]["errorMessage"]
        validate_error(r.json())

    def test_ensembl_ids_and_symbol_case_returns_200(self, server):
        _, rows = variants_of(KG_VCF)
        with gzip.open(SHARED / "annotations" / "hg38_genes.tsv.gz", "rt") as fh:
            genes = [line.rstrip("\n").split("\t") for line in fh if line.startswith("chr22\t")]
        hit = next(
            g
            for g in genes
            if sum(1 for r in rows if int(g[1]) < r[2] and int(g[2]) > r[1]) > 3
            and not g[3].startswith("ENSG")
        )
        symbol, ensg = hit[3], hit[4]
        base = {"datasetIds": "kg", "requestedGranularity": "count"}
        want = count(_get(server, "/g_variants", geneId=symbol, **base))
        assert want > 3
        for spelling in (symbol.lower(), symbol.swapcase(), ensg, ensg.split(".")[0]):
            assert count(_get(server, "/g_variants", geneId=spelling, **base)) == want, spelling
        # the annotated BRAF record: by Ensembl id too
        assert (
            count(
                _get(
                    server,
                    "/g_variants",
                    geneId="braf",
                    datasetIds="ann",
                    requestedGranularity="count",
                )
            )
            == 2
        )
        assert (
            count(
                _get(
                    server,
                    "/g_variants",
                    geneId="ENSG00000157764",
                    datasetIds="ann",
                    requestedGranularity="count",
                )
            )
            == 2
        )

    def test_pato_sex_terms_map_to_ncit_returns_200(self, server):
        inds = bff("individuals")
        for pato, ncit in (("PATO:0000383", "NCIT:C16576"), ("PATO:0000384", "NCIT:C20197")):
            want = sum(1 for i in inds if i["sex"]["id"] == ncit)
            for term in (pato, ncit):
                body = _get(
                    server,
                    "/individuals",
                    requestedGranularity="count",
                    datasetIds="kg",
                    filters=term,
                )
                assert count(body) == want > 0, term
                assert body["meta"]["receivedRequestSummary"]["filters"] == [term]


# ---------------------------------------------------------------- requests
class TestRequests:
    def test_unknown_parameters_warn_returns_200(self, server):
        body = _get(server, "/individuals", datasetIds="kg", referenceNam="22", colour="red")
        warnings = body["info"]["warnings"]
        assert any("'referenceNam'" in w for w in warnings)
        assert any("'colour'" in w for w in warnings)
        post = _post(
            server,
            "/individuals",
            {
                "requestParameters": {"datasetIds": ["kg"], "referenceNam": "22"},
                "paginaton": {"skip": 1},
                "filters": [{"id": "NCIT:C20197", "foo": 1}],
            },
        )
        text = " ".join(post["info"]["warnings"])
        assert "'referenceNam'" in text and "'paginaton'" in text and "foo" in text
        clean = _get(server, "/individuals", datasetIds="kg")
        assert "warnings" not in clean.get("info", {})

    def test_similarity_warned_returns_200(self, server):
        for similarity, warned in (("exact", False), ("high", True), ("low", True)):
            body = _post(
                server,
                "/individuals",
                {
                    "requestedGranularity": "count",
                    "requestParameters": {"datasetIds": ["kg"]},
                    "filters": [{"id": "NCIT:C20197", "similarity": similarity}],
                },
            )
            warnings = body.get("info", {}).get("warnings", [])
            assert any("similarity" in w for w in warnings) == warned, similarity
        r = server.post(
            "/individuals",
            json={"query": {"filters": [{"id": "NCIT:C20197", "similarity": "somewhat"}]}},
        )
        assert r.status_code == 400
        validate_error(r.json())

    @pytest.mark.parametrize(
        "path,params",
        [
            ("/g_variants", {"referenceName": "22", "start": str(2**63), "end": str(2**64)}),
            ("/g_variants", {"referenceName": "22", "start": "1", "end": "9" * 400}),
            ("/individuals", {"skip": str(2**63)}),
            ("/individuals", {"limit": str(2**70)}),
            ("/individuals", {"skip": str(2**62), "limit": "50"}),
            ("/g_variants", {"variantMinLength": str(2**64), "variantType": "DEL"}),
        ],
    )
    def test_out_of_range_integers_returns_400(self, server, path, params):
        r = server.get(path, params=params)
        assert r.status_code == 400, r.text
        validate_error(r.json())

    def test_out_of_range_integers_in_body_returns_400(self, server):
        for query in (
            {"requestParameters": {"referenceName": "22", "start": [2**63], "end": [2**63 + 5]}},
            {"pagination": {"skip": 2**64, "limit": 1}},
            {"pagination": {"skip": 2**62, "limit": 10}},
        ):
            r = server.post("/g_variants", json={"query": query})
            assert r.status_code == 400, (query, r.text)
            validate_error(r.json())
        top = 2**63 - 1  # the largest int64 is a valid (empty) range
        body = _post(
            server,
            "/g_variants",
            {
                "requestParameters": {
                    "referenceName": "22",
                    "start": [top - 1],
                    "end": [top],
                    "datasetIds": ["kg"],
                },
                "requestedGranularity": "count",
            },
        )
        assert count(body) == 0

    def test_deep_nesting_returns_400(self, server):
        value: object = "x"
        for _ in range(40):
            value = {"a": value}
        r = server.post(
            "/g_variants",
            json={"query": {"requestParameters": {"g_variant": {"referenceName": value}}}},
        )
        assert r.status_code == 400, r.text
        assert "nests deeper" in r.json()["error"]["errorMessage"]
        validate_error(r.json())

    @pytest.mark.parametrize(
        "path",
        ["//individuals", "/individuals//g_variants", "//", "/individuals/HG00096//runs", "//map"],
    )
    def test_double_slash_paths_return_404(self, server, path):
        url = httpx.URL(str(server.base_url).rstrip("/") + path)  # not a network-path reference
        assert url.path == BASE + path
        r = server.get(url)
        assert r.status_code == 404, r.text
        validate_error(r.json())


# ---------------------------------------------------------------- v2.2 frequencies
@lru_cache(maxsize=1)
def _genotypes():
    """pysam: {(start, alt): {sample: copies of alt}} and every sample of the VCF."""
    out = {}
    with pysam.VariantFile(str(KG_VCF)) as vf:
        samples = list(vf.header.samples)
        for rec in vf:
            for a, alt in enumerate(rec.alts or (), start=1):
                out[(rec.start, alt)] = {
                    s: rec.samples[s]["GT"].count(a)
                    for s in samples
                    if a in (rec.samples[s]["GT"] or ())
                }
    return samples, out


def _subsets(samples) -> dict[str, set]:
    individual_of = {b["id"]: b["individualId"] for b in bff("biosamples")}
    inds = {i["id"]: i for i in bff("individuals")}
    groups = defaultdict(set)
    for s in samples:
        ind = inds.get(individual_of.get(s, s))
        if ind is None:
            continue
        groups[ind["sex"]["label"]].add(s)
        if ind.get("ethnicity"):
            groups[ind["ethnicity"]["label"]].add(s)
    return groups


class TestFrequencies:
    def test_frequencies_by_sex_and_population_equal_pysam_returns_200(self, server):
        samples, genotypes = _genotypes()
        groups = _subsets(samples)
        _, rows = variants_of(KG_VCF)
        rng = random.Random(23)
        common = [r for r in rows if len(r[5]) > 50]
        checked = 0
        for _chrom, start, _end, ref, alt, _carriers in rng.sample(common, 5) + rng.sample(rows, 5):
            body = _get(
                server,
                "/g_variants",
                requestedGranularity="record",
                datasetIds="kg",
                referenceName="22",
                start=str(start),
                referenceBases=ref,
                alternateBases=alt,
            )
            record = body["response"]["resultSets"][0]["results"][0]
            freqs = {f["population"]: f for f in record["frequencyInPopulations"][0]["frequencies"]}
            copies = genotypes[(start, alt)]
            whole = freqs["kg"]
            assert whole["alleleCount"] == sum(copies.values())
            assert whole["alleleCountHomozygous"] == sum(1 for c in copies.values() if c == 2)
            assert whole["alleleCountHeterozygous"] == sum(1 for c in copies.values() if c == 1)
            assert set(freqs) == {"kg"} | set(groups)
            for label, members in groups.items():
                f = freqs[label]
                hom = sum(1 for s in members if copies.get(s) == 2)
                het = sum(1 for s in members if copies.get(s) == 1)
                assert (
                    f["alleleCount"],
                    f["alleleNumber"],
                    f["alleleCountHomozygous"],
                    f["alleleCountHeterozygous"],
                ) == (het + 2 * hom, 2 * len(members), hom, het), label
                assert f["alleleFrequency"] == pytest.approx((het + 2 * hom) / (2 * len(members)))
                checked += 1
        assert checked >= 10 * 4
        assert {"female", "male"} <= set(groups)
