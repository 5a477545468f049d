"""Beacon v2 API: answers checked against bcftools on the same VCFs, GET == POST,
every response validated against the Beacon v2 JSON schemas, privacy tiers
with real signed tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import random
from functools import lru_cache
from pathlib import Path

import pysam
import pytest
import sqlalchemy as sa

from server.beacon.demo import METADATA
from server.beacon.genes import load_genes
from server.beacon.metadata import load_metadata
from server.beacon.ontology import load_ontology
from server.beacon.vcf import load_vcf
from server.db.tables import AuditEvent
from server.registry import add_dataset, add_files
from tests.support.beacon import KG_VCF, SHARED, trusted_node
from tests.support.data import HPO_ROOT, bcftools_query
from tests.unit.beacon.schemas import (
    ENTITY_DIRS,
    validate_document,
    validate_error,
    validate_response,
)

BASE = "/beacon/v2"
SEED = Path(__file__).resolve().parents[2] / "seed_data"
MINI_HPO = (
    HPO_ROOT
    + """
[Term]
id: HP:0000598
name: Abnormality of the ear
is_a: HP:0000118

[Term]
id: HP:0000365
name: Hearing impairment
is_a: HP:0000598
"""
)


ANN_FORMAT = (
    "Allele | Annotation | Annotation_Impact | Gene_Name | Gene_ID | Feature_Type | "
    "Feature_ID | Transcript_BioType | Rank | HGVS.c | HGVS.p | cDNA.pos / cDNA.length | "
    "CDS.pos / CDS.length | AA.pos / AA.length | Distance | ERRORS / WARNINGS / INFO"
)
ANNOTATED_VCF = (
    "##fileformat=VCFv4.2\n##reference=GRCh38\n##contig=<ID=chr7,length=159345973>\n"
    "##INFO=<ID=ANN,Number=.,Type=String,"
    f"Description=\"Functional annotations: '{ANN_FORMAT}' \">\n"
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tP1\tP2\tP3\n"
    "chr7\t140753336\trs113488022\tA\tT\t.\tPASS\tANN=T|missense_variant|MODERATE|BRAF|"
    "ENSG00000157764|transcript|ENST00000646891.2|protein_coding|15/18|c.1799T>A|p.Val600Glu|"
    "1967/6459|1799/2301|600/766||\tGT\t0/1\t0/0\t1/1\n"
    "chr7\t140753400\t.\tG\tC\t.\tPASS\tANN=C|synonymous_variant|LOW|BRAF|ENSG00000157764|"
    "transcript|ENST00000646891.2|protein_coding|15/18|c.1735C>G|p.Leu579Leu|||||\tGT\t0/0\t0/1\t0/0\n"
)


def populate(db, tmp: Path) -> None:
    add_dataset(db, "kg", access="public", assembly="GRCh38")
    add_dataset(db, "demo", access="public", assembly="GPDEMO1")
    add_dataset(db, "ctl", access="controlled", assembly="GPDEMO1", grant_value="urn:ds:ctl")
    load_vcf(db, KG_VCF, "kg", progress=False)
    load_metadata(db, sorted((SHARED / "beacon" / "bff").glob("*.json")), "kg", progress=False)
    for ds in ("demo", "ctl"):
        load_vcf(db, SEED / "cohort.vcf.gz", ds, progress=False)
        load_metadata(db, [SEED / f for f in METADATA], ds, progress=False)
    add_dataset(db, "ann", access="public", assembly="GRCh38")
    (tmp / "braf.vcf").write_text(ANNOTATED_VCF)
    load_vcf(db, tmp / "braf.vcf", "ann", progress=False)
    (tmp / "mini-hp.obo").write_text(MINI_HPO)
    load_ontology(db, tmp / "mini-hp.obo", progress=False)
    load_genes(db, SHARED / "annotations" / "hg38_genes.tsv.gz", progress=False)
    add_files(db, [SEED / "cohort.vcf.gz"], "demo", object_id="demo-cohort", progress=False)
    add_files(db, [SEED / "DK0001.bam"], "demo", object_id="DK0001", progress=False)
    add_files(
        db, [SHARED / "reads" / "HG00100.chr17slice.bam"], "kg", object_id="HG00096", progress=False
    )
    add_files(
        db,
        [SHARED / "variants" / "test_1000G_hg38.vcf.gz"],
        "kg",
        object_id="kg-vcf",
        progress=False,
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def node(request, tmp_path_factory, kit):
    tmp = tmp_path_factory.mktemp("beacon-data")
    yield from trusted_node(
        request, tmp_path_factory, kit, lambda db: populate(db, tmp), beacon_max_limit=50
    )


@pytest.fixture
def client(node):
    return node.client


# ---------------------------------------------------------------- reference answers
@lru_cache(maxsize=4)
def variants_of(path: Path) -> tuple[list[str], list[tuple]]:
    """bcftools: (samples, [(chrom, start, end, ref, alt, carriers)]) one row per
    carried ALT allele."""
    samples = pysam.VariantFile(str(path)).header.samples
    names = list(samples)
    out = bcftools_query(path, "-f", "%CHROM\t%POS0\t%END\t%REF\t%ALT[\t%GT]\n")
    rows = []
    for line in out.splitlines():
        chrom, pos0, end, ref, alts, *gts = line.split("\t")
        split = [g.replace("|", "/").split("/") for g in gts]
        for i, alt in enumerate(alts.split(",")):
            a = str(i + 1)
            carriers = frozenset(names[j] for j, g in enumerate(split) if a in g)
            if carriers:  # an allele nobody carries is not a record of the dataset
                rows.append((chrom, int(pos0), int(end), ref, alt, carriers))
    return names, rows


def post_body(params=None, filters=None, granularity="count", **query):
    q = {
        "requestParameters": params or {},
        "filters": filters or [],
        "requestedGranularity": granularity,
        **query,
    }
    return {"meta": {"apiVersion": "v2.0"}, "query": q}


def get_and_post(client, path, params: dict, filters=None, granularity="count", **extra):
    """The same request by GET and by POST; both answers must agree."""
    qs = dict(params)
    for k in ("start", "end"):
        if isinstance(qs.get(k), list):
            qs[k] = ",".join(str(x) for x in qs[k])
    if filters:
        qs["filters"] = ",".join(f["id"] if isinstance(f, dict) else f for f in filters)
    qs["requestedGranularity"] = granularity
    qs.update(
        {
            k: v
            for k, v in extra.items()
            if k in ("skip", "limit", "datasetIds", "includeResultsetResponses")
        }
    )
    g = client.get(BASE + path, params=qs)
    assert g.status_code == 200, g.text
    pagination = {k: extra[k] for k in ("skip", "limit") if k in extra}
    rp = dict(params)
    if "datasetIds" in extra:
        rp["datasetIds"] = extra["datasetIds"].split(",")
    body = post_body(
        rp,
        filters,
        granularity,
        **({"pagination": pagination} if pagination else {}),
        **(
            {"includeResultsetResponses": extra["includeResultsetResponses"]}
            if "includeResultsetResponses" in extra
            else {}
        ),
    )
    p = client.post(BASE + path, json=body)
    assert p.status_code == 200, p.text
    gj, pj = g.json(), p.json()
    assert gj["responseSummary"] == pj["responseSummary"]
    assert gj.get("response") == pj.get("response")
    parts = path.strip("/").split("/")
    validate_response(gj, parts[-1] if parts[-1] in ENTITY_DIRS else parts[0])
    return gj


def count(body) -> int:
    return body["responseSummary"]["numTotalResults"]


# ---------------------------------------------------------------- framework
class TestFramework:
    @pytest.mark.parametrize(
        "path,schema",
        [
            ("/", "beaconInfoResponse"),
            ("/info", "beaconInfoResponse"),
            ("/configuration", "beaconConfigurationResponse"),
            ("/map", "beaconMapResponse"),
            ("/entry_types", "beaconEntryTypesResponse"),
            ("/filtering_terms", "beaconFilteringTermsResponse"),
        ],
    )
    def test_framework_documents_valid_returns_200(self, client, path, schema):
        r = client.get(BASE + path)
        assert r.status_code == 200
        validate_document(r.json(), schema)

    def test_service_info_returns_200(self, client):
        r = client.get(BASE + "/service-info")
        assert r.status_code == 200 and r.json()["type"]["artifact"] == "beacon"

    def test_every_map_url_answers_returns_200(self, client, node):
        ids = {
            "g_variants": None,
            "individuals": "HG00096",
            "biosamples": "HG00096",
            "runs": "SRR00000001",
            "analyses": "UK1_analysisId_1",
            "cohorts": None,
            "datasets": "kg",
        }
        first = client.get(
            BASE + "/g_variants",
            params={"requestedGranularity": "record", "datasetIds": "kg", "limit": 1},
        )
        ids["g_variants"] = first.json()["response"]["resultSets"][0]["results"][0][
            "variantInternalId"
        ]
        cohorts = client.get(
            BASE + "/cohorts", params={"requestedGranularity": "record", "datasetIds": "kg"}
        ).json()
        ids["cohorts"] = cohorts["response"]["collections"][0]["id"]
        endpoint_sets = client.get(BASE + "/map").json()["response"]["endpointSets"]
        urls = []
        for _entity, ep in endpoint_sets.items():
            entry = ep["rootUrl"].rsplit("/", 1)[1]
            urls += [ep["rootUrl"], ep["singleEntryUrl"]]
            urls += [e["url"] for e in ep.get("endpoints", {}).values()]
            if "filteringTermsUrl" in ep:
                urls.append(ep["filteringTermsUrl"])
            urls = [u.replace("{id}", ids[entry]) for u in urls]
        for url in urls:
            assert url.startswith(node.settings.public_url + BASE)
            r = client.get(url[len(node.settings.public_url) :], params={"datasetIds": "kg"})
            assert r.status_code == 200, (url, r.text)

    def test_filtering_terms_lists_loaded_terms_returns_200(self, client):
        terms = client.get(BASE + "/filtering_terms").json()["response"]
        ids = {t["id"] for t in terms["filteringTerms"]}
        assert {"NCIT:C20197", "HP:0000365", "ICD10:J40", "age"} <= ids
        assert any(r["namespacePrefix"] == "HP" for r in terms["resources"])


# ---------------------------------------------------------------- variants vs bcftools
class TestGetGVariants:
    def test_range_counts_equal_bcftools_returns_200(self, client):
        _, rows = variants_of(KG_VCF)
        rng = random.Random(7)
        lo, hi = min(r[1] for r in rows), max(r[2] for r in rows)
        for _ in range(12):
            s = rng.randrange(lo - 1000, hi)
            e = s + rng.choice([1, 50, 5000, 100000])
            want = sum(1 for r in rows if r[1] < e and r[2] > s)
            body = get_and_post(
                client,
                "/g_variants",
                {"referenceName": "chr22", "start": [s], "end": [e]},
                datasetIds="kg",
            )
            assert count(body) == want, (s, e)
            assert body["responseSummary"]["exists"] == (want > 0)

    def test_allele_queries_equal_bcftools_returns_200(self, client):
        _, rows = variants_of(KG_VCF)
        rng = random.Random(11)
        for _chrom, start, _end, ref, alt, carriers in rng.sample(rows, 8):
            answers = []
            for name in ("chr22", "22", "NC_000022.11", "refseq:NC_000022.11"):
                body = get_and_post(
                    client,
                    "/g_variants",
                    {
                        "referenceName": name,
                        "start": [start],
                        "referenceBases": ref,
                        "alternateBases": alt,
                        "assemblyId": "GRCh38",
                    },
                    granularity="record",
                    datasetIds="kg",
                )
                answers.append(body["response"])
            assert all(a == answers[0] for a in answers)
            results = answers[0]["resultSets"][0]["results"]
            assert len(results) == 1
            freq = results[0]["frequencyInPopulations"][0]["frequencies"][0]
            assert freq["alleleCountHomozygous"] + freq["alleleCountHeterozygous"] == len(carriers)
            ind = get_and_post(
                client,
                "/individuals",
                {
                    "referenceName": "22",
                    "start": [start],
                    "referenceBases": ref,
                    "alternateBases": alt,
                },
                datasetIds="kg",
            )
            bff = {json_id for json_id in _bff_ids()}
            assert count(ind) == len(carriers & bff)

    def test_bracket_and_length_queries_equal_bcftools_returns_200(self, client):
        _, rows = variants_of(SEED / "cohort.vcf.gz")
        # bracket upper bounds are exclusive: [start[0], start[1]), [end[0], end[1])
        body = get_and_post(
            client,
            "/g_variants",
            {"referenceName": "chr1", "start": [1000, 20000], "end": [1000, 40000]},
            datasetIds="demo",
        )
        assert count(body) == sum(
            1 for r in rows if r[0] == "chr1" and 1000 <= r[1] < 20000 and 1000 <= r[2] < 40000
        )
        svs = [r for r in rows if r[4].startswith("<")]
        body = get_and_post(client, "/g_variants", {"variantType": "DUP"}, datasetIds="demo")
        assert count(body) == sum(1 for r in svs if r[4] == "<DUP>")
        body = get_and_post(client, "/g_variants", {"variantType": "SO:0001483"}, datasetIds="demo")
        trimmed = [_trim(r[3], r[4]) for r in rows if not r[4].startswith("<")]
        assert count(body) == sum(1 for ref, alt in trimmed if len(ref) == len(alt) == 1)
        body = get_and_post(
            client,
            "/g_variants",
            {"variantType": "DEL", "variantMinLength": "2", "variantMaxLength": "5"},
            datasetIds="demo",
        )
        want = sum(1 for ref, alt in trimmed if not alt and 2 <= len(ref) <= 5)
        assert count(body) == want

    def test_gene_query_covers_gene_interval_returns_200(self, client):
        _, rows = variants_of(KG_VCF)
        import gzip

        with gzip.open(SHARED / "annotations" / "hg38_genes.tsv.gz", "rt") as fh:
            genes = [line.split("\t") for line in fh if line.startswith("chr22\t")]
        hit = next(
            g
            for g in genes
            if any(int(g[1]) < r[2] and int(g[2]) > r[1] for r in rows)
            and g[3]
            and not g[3].startswith("ENSG")
        )
        body = get_and_post(client, "/g_variants", {"geneId": hit[3]}, datasetIds="kg")
        want = sum(1 for r in rows if int(hit[1]) < r[2] and int(hit[2]) > r[1])
        assert count(body) >= want > 0

    def test_hgvs_short_form_returns_200(self, client):
        _, rows = variants_of(KG_VCF)
        chrom, start, end, ref, alt, _ = next(r for r in rows if len(r[3]) == len(r[4]) == 1)
        for seq in ("NC_000022.11", "chr22"):
            body = get_and_post(
                client,
                "/g_variants",
                {"genomicAlleleShortForm": f"{seq}:g.{start + 1}{ref}>{alt}"},
                datasetIds="kg",
            )
            assert count(body) == 1

    def test_annotation_queries_returns_200(self, client):
        for params in (
            {"aminoacidChange": "V600E", "geneId": "BRAF"},
            {"aminoacidChange": "p.Val600Glu"},
            {"genomicAlleleShortForm": "NC_000007.14:g.140753336A>T"},
            {"genomicAlleleShortForm": "ENST00000646891.2:c.1799T>A"},
        ):
            body = get_and_post(
                client, "/g_variants", params, granularity="record", datasetIds="ann"
            )
            assert count(body) == 1, params
            record = body["response"]["resultSets"][0]["results"][0]
            assert record["molecularAttributes"]["aminoacidChanges"] == ["V600E"]
            assert record["molecularAttributes"]["geneIds"] == ["BRAF"]
            freq = record["frequencyInPopulations"][0]["frequencies"][0]
            assert (freq["alleleCount"], freq["alleleNumber"], freq["alleleCountHomozygous"]) == (
                3,
                6,
                1,
            )
        body = get_and_post(client, "/g_variants", {"geneId": "BRAF"}, datasetIds="ann")
        assert count(body) == 2
        body = get_and_post(client, "/individuals", {"aminoacidChange": "V600E"}, datasetIds="ann")
        assert count(body) == 0  # carriers P1 and P3 have no individual records here
        body = get_and_post(client, "/g_variants", {"aminoacidChange": "V600K"}, datasetIds="ann")
        assert count(body) == 0

    @pytest.mark.parametrize(
        "query",
        [
            {"referenceName": "22", "assemblyId": "GRCh37", "datasetIds": "kg"},
            {"referenceName": "NC_000022.10", "assemblyId": "GRCh38"},  # a GRCh37 accession
        ],
    )
    def test_wrong_assembly_returns_400(self, client, query):
        r = client.get(BASE + "/g_variants", params={"start": "100", "end": "200", **query})
        assert r.status_code == 400
        validate_error(r.json())

    @pytest.mark.parametrize(
        "params",
        [
            {"referenceName": "22", "start": "100"},
            {"start": "5", "end": "10"},
            {"referenceName": "22", "start": "10", "end": "5"},
            {"variantType": "FOO"},
            {"referenceName": "22", "start": "-1", "end": "5"},
            {"requestedGranularity": "all"},
        ],
    )
    def test_invalid_query_returns_400(self, client, params):
        r = client.get(BASE + "/g_variants", params=params)
        assert r.status_code == 400, r.text
        validate_error(r.json())

    def test_pagination_pages_and_total_returns_200(self, client):
        params = {"referenceName": "chr22", "start": [10500000], "end": [10600000]}
        first = get_and_post(
            client, "/g_variants", params, granularity="record", datasetIds="kg", limit=7, skip=0
        )
        second = get_and_post(
            client, "/g_variants", params, granularity="record", datasetIds="kg", limit=7, skip=1
        )
        a = [v["variantInternalId"] for v in first["response"]["resultSets"][0]["results"]]
        b = [v["variantInternalId"] for v in second["response"]["resultSets"][0]["results"]]
        assert len(a) == len(b) == 7 and not set(a) & set(b)
        assert count(first) == count(second) > 14
        capped = get_and_post(
            client, "/g_variants", params, granularity="record", datasetIds="kg", limit=5000
        )
        assert len(capped["response"]["resultSets"][0]["results"]) == 50
        assert capped["info"]["pagination"]["limitCappedTo"] == 50
        assert count(capped) == count(first)


def _trim(ref: str, alt: str) -> tuple[str, str]:
    """The allele change without the bases REF and ALT share at either end (the
    shared suffix first, as the VCF loader does, computed here independently)."""
    suffix = len(os.path.commonprefix([ref[::-1], alt[::-1]]))
    ref, alt = ref[: len(ref) - suffix], alt[: len(alt) - suffix]
    prefix = len(os.path.commonprefix([ref, alt]))
    return ref[prefix:], alt[prefix:]


def _bff_ids() -> set[str]:
    return {
        r["id"] for r in json.loads((SHARED / "beacon" / "bff" / "individuals.json").read_text())
    }


# ---------------------------------------------------------------- filters
class TestGetIndividuals:
    def test_phenotype_and_variant_is_intersection_returns_200(self, client):
        names, rows = variants_of(KG_VCF)
        inds = json.loads((SHARED / "beacon" / "bff" / "individuals.json").read_text())
        male = {i["id"] for i in inds if i["sex"]["id"] == "NCIT:C20197"}
        j40 = {
            i["id"]
            for i in inds
            if any(d["diseaseCode"]["id"] == "ICD10:J40" for d in i.get("diseases", []))
        }
        rng = random.Random(3)
        common = [r for r in rows if len(r[5]) > 100]
        for _chrom, start, _end, _ref, alt, carriers in rng.sample(common, 4):
            params = {"referenceName": "22", "start": [start], "alternateBases": alt}
            body = get_and_post(
                client, "/individuals", params, filters=["NCIT:C20197"], datasetIds="kg"
            )
            assert count(body) == len(carriers & male)
            body = get_and_post(
                client,
                "/individuals",
                params,
                filters=["NCIT:C20197", "ICD10:J40"],
                datasetIds="kg",
            )
            assert count(body) == len(carriers & male & j40)
            body = get_and_post(
                client, "/g_variants", params, filters=["ICD10:J40"], datasetIds="kg"
            )
            assert count(body) == (1 if carriers & j40 else 0)

    def test_seed_phenotype_carriers_equal_bcftools_returns_200(self, client):
        _, rows = variants_of(SEED / "cohort.vcf.gz")
        inds = json.loads((SEED / "individuals.bff.json").read_text())
        bios = {
            b["id"]: b["individualId"]
            for b in json.loads((SEED / "biosamples.bff.json").read_text())
        }
        by_term: dict[str, set] = {}
        for i in inds:
            for f in i.get("phenotypicFeatures", []):
                if not f.get("excluded"):
                    by_term.setdefault(f["featureType"]["id"], set()).add(i["id"])
        rng = random.Random(5)
        checked = 0
        small = [r for r in rows if not r[4].startswith("<")]
        for chrom, start, _end, ref, alt, carriers in rng.sample(small, 40):
            carrier_inds = {bios[c] for c in carriers}
            for term, members in sorted(by_term.items())[:3]:
                params = {
                    "referenceName": chrom,
                    "start": [start],
                    "referenceBases": ref,
                    "alternateBases": alt,
                }
                body = get_and_post(
                    client, "/individuals", params, filters=[term], datasetIds="demo"
                )
                assert count(body) == len(carrier_inds & members), (start, term)
                checked += bool(carrier_inds & members)
        assert checked

    def test_descendant_terms_expand_returns_200(self, client):
        inds = json.loads((SEED / "individuals.bff.json").read_text())
        hearing = {
            i["id"]
            for i in inds
            if any(
                f["featureType"]["id"] == "HP:0000365"
                for f in i.get("phenotypicFeatures", [])
                if not f.get("excluded")
            )
        }
        assert hearing
        body = get_and_post(client, "/individuals", {}, filters=["HP:0000118"], datasetIds="demo")
        assert count(body) >= len(hearing)
        no_desc = client.post(
            BASE + "/individuals",
            json=post_body(
                {"datasetIds": ["demo"]}, [{"id": "HP:0000598", "includeDescendantTerms": False}]
            ),
        )
        assert count(no_desc.json()) == 0
        with_desc = client.post(
            BASE + "/individuals", json=post_body({"datasetIds": ["demo"]}, [{"id": "HP:0000598"}])
        )
        assert count(with_desc.json()) == len(hearing)

    def test_alphanumeric_filters_returns_200(self, client):
        inds = json.loads((SEED / "individuals.bff.json").read_text())
        males = sum(1 for i in inds if i["sex"]["label"] == "male")
        for flt, want in ((("sex", "=", "male"), males), (("sex", "!", "male"), len(inds) - males)):
            body = client.post(
                BASE + "/individuals",
                json=post_body(
                    {"datasetIds": ["demo"]}, [{"id": flt[0], "operator": flt[1], "value": flt[2]}]
                ),
            )
            assert body.status_code == 200 and count(body.json()) == want
        from server.beacon.metadata import duration_days

        onset = {
            i["id"]
            for i in inds
            for d in i.get("diseases", [])
            if duration_days((d.get("ageOfOnset") or {}).get("iso8601duration", ""))
            and duration_days(d["ageOfOnset"]["iso8601duration"]) > duration_days("P30Y")
        }
        body = client.post(
            BASE + "/individuals",
            json=post_body(
                {"datasetIds": ["demo"]},
                [{"id": "ageOfOnset", "operator": ">", "value": "P30Y", "scope": "individuals"}],
            ),
        )
        assert count(body.json()) == len(onset)

    def test_unknown_filter_warns_returns_200(self, client):
        body = get_and_post(client, "/individuals", {}, filters=["XYZ:123"], datasetIds="demo")
        assert body["responseSummary"]["exists"] is False
        assert any("XYZ:123" in w for w in body["info"]["warnings"])

    def test_cross_entry_individual_variants_returns_200(self, client):
        _, rows = variants_of(KG_VCF)
        body = get_and_post(client, "/individuals/HG00096/g_variants", {}, datasetIds="kg")
        assert count(body) == sum(1 for r in rows if "HG00096" in r[5])
        vid = client.get(
            BASE + "/g_variants",
            params={
                "requestedGranularity": "record",
                "datasetIds": "kg",
                "referenceName": "22",
                "start": str(rows[0][1]),
                "alternateBases": rows[0][4],
            },
        ).json()["response"]["resultSets"][0]["results"][0]["variantInternalId"]
        body = get_and_post(client, f"/g_variants/{vid}/individuals", {}, datasetIds="kg")
        assert count(body) == len(rows[0][5] & _bff_ids())


# ---------------------------------------------------------------- response shape
class TestResponses:
    def test_include_resultset_responses_returns_200(self, client):
        params = {"referenceName": "chr1", "start": [0], "end": [60000]}
        all_ = get_and_post(
            client, "/g_variants", params, includeResultsetResponses="ALL", datasetIds="kg,demo"
        )
        assert [rs["id"] for rs in all_["response"]["resultSets"]] == ["kg", "demo"]
        hit = get_and_post(
            client, "/g_variants", params, includeResultsetResponses="HIT", datasetIds="kg,demo"
        )
        assert [rs["id"] for rs in hit["response"]["resultSets"]] == ["demo"]
        miss = get_and_post(
            client, "/g_variants", params, includeResultsetResponses="MISS", datasetIds="kg,demo"
        )
        assert [rs["id"] for rs in miss["response"]["resultSets"]] == ["kg"]
        none = get_and_post(
            client, "/g_variants", params, includeResultsetResponses="NONE", datasetIds="kg,demo"
        )
        assert none["response"] == {"resultSets": []}  # the schema wants the section

    def test_request_summary_echo_and_test_mode_returns_200(self, client):
        r = client.post(
            BASE + "/g_variants",
            json={
                "meta": {"apiVersion": "v2.0"},
                "query": {
                    "requestParameters": {"referenceName": "chr1", "start": [10], "end": [500]},
                    "filters": [{"id": "NCIT:C20197"}],
                    "testMode": True,
                    "pagination": {"skip": 0, "limit": 3},
                },
            },
        )
        meta = r.json()["meta"]
        assert meta["testMode"] is True
        summary = meta["receivedRequestSummary"]
        assert summary["requestParameters"]["g_variant"]["referenceName"] == "chr1"
        assert summary["filters"] == ["NCIT:C20197"] and summary["pagination"]["limit"] == 3
        validate_response(r.json())

    def test_handovers_for_datasets_and_analyses_returns_200(self, client, node):
        body = get_and_post(client, "/datasets", {}, granularity="record", datasetIds="demo")
        assert [c["id"] for c in body["response"]["collections"]] == ["demo"]
        urls = [h["url"] for h in body["beaconHandovers"]]
        assert f"{node.settings.public_url}/variants/demo-cohort" in urls
        assert any(u.startswith("drs://") and u.endswith("/DK0001") for u in urls)

    def test_handovers_for_runs_and_analyses_returns_200(self, client, node):
        base = node.settings.public_url
        run = get_and_post(client, "/runs/SRR00000001", {}, granularity="record", datasetIds="kg")
        urls = [h["url"] for h in run["response"]["resultSets"][0]["resultsHandovers"]]
        assert f"{base}/reads/HG00096" in urls and f"{base}/variants/kg-vcf" not in urls
        analysis = get_and_post(
            client, "/analyses/UK1_analysisId_1", {}, granularity="record", datasetIds="kg"
        )
        urls = [h["url"] for h in analysis["response"]["resultSets"][0]["resultsHandovers"]]
        assert f"{base}/variants/kg-vcf" in urls

    def test_unknown_record_returns_404(self, client):
        r = client.get(
            BASE + "/individuals/NOPE",
            params={"requestedGranularity": "record", "datasetIds": "kg,demo"},
        )
        assert r.status_code == 404
        validate_error(r.json())
        # with a controlled dataset in scope the answer stays boolean: no 404 that would
        # tell more than the tier allows
        r = client.get(BASE + "/individuals/NOPE", params={"requestedGranularity": "record"})
        assert r.status_code == 200 and r.json()["responseSummary"]["exists"] is False


# ---------------------------------------------------------------- privacy tiers
class TestPrivacy:
    def test_controlled_dataset_anonymous_gets_boolean_returns_200(self, client):
        body = get_and_post(
            client, "/g_variants", {"variantType": "SNP"}, granularity="record", datasetIds="ctl"
        )
        assert body["meta"]["returnedGranularity"] == "boolean"
        assert "numTotalResults" not in body["responseSummary"] and "response" not in body

    def test_controlled_dataset_with_grant_gets_records_returns_200(self, client, kit):
        token = kit.grant("urn:ds:ctl")
        r = client.get(
            BASE + "/g_variants",
            params={"variantType": "SNP", "datasetIds": "ctl", "requestedGranularity": "record"},
            headers={"Authorization": f"Bearer {token}"},
        )
        body = r.json()
        assert body["meta"]["returnedGranularity"] == "record"
        assert body["response"]["resultSets"][0]["results"]
        validate_response(body, "g_variants")

    def test_count_tier_counts_are_rounded_returns_200(self, client, kit, node):
        # Below the record tier only alleles with >= threshold carriers count (the
        # people rule of server.beacon.tiers), so the count is that of bcftools'
        # SNPs with enough carriers, rounded; no longer every matching row.
        token = kit.registered()
        headers = {"Authorization": f"Bearer {token}"}
        r = client.get(
            BASE + "/g_variants",
            params={"variantType": "SNP", "datasetIds": "ctl", "requestedGranularity": "record"},
            headers=headers,
        )
        body = r.json()
        validate_response(body)
        assert body["meta"]["returnedGranularity"] == "count"
        n = body["responseSummary"]["numTotalResults"]
        assert n % node.settings.beacon_count_rounding == 0 and n > 0
        assert body["responseSummary"]["countPrecision"] == "rounded"
        _, rows = variants_of(SEED / "cohort.vcf.gz")
        snps = [
            r
            for r in rows
            if not r[4].startswith("<") and [len(x) for x in _trim(r[3], r[4])] == [1, 1]
        ]
        visible = sum(1 for r in snps if len(r[5]) >= node.settings.beacon_count_threshold)
        assert 0 < visible < len(snps)
        from server.beacon.tiers import round_count

        assert n == round_count(visible, node.settings)
        exact = client.get(
            BASE + "/g_variants",
            params={"variantType": "SNP", "datasetIds": "demo", "requestedGranularity": "count"},
        ).json()
        assert count(exact) == len(snps)  # the public copy: every SNP, exact
        again = client.get(
            BASE + "/g_variants",
            params={"variantType": "SNP", "datasetIds": "ctl", "requestedGranularity": "record"},
            headers=headers,
        ).json()
        assert again["responseSummary"] == body["responseSummary"]

    def test_mixed_tiers_each_dataset_at_its_own_tier_returns_200(self, client):
        # Each dataset answers at its own tier: the public copy gives its records,
        # the controlled one only its boolean; the summary stays boolean (no total).
        body = get_and_post(
            client,
            "/individuals",
            {},
            granularity="record",
            datasetIds="demo,ctl",
            includeResultsetResponses="ALL",
        )
        assert body["meta"]["returnedGranularity"] == "record"
        assert "numTotalResults" not in body["responseSummary"]
        sets = body["response"]["resultSets"]
        assert [rs["id"] for rs in sets] == ["demo"]
        assert sets[0]["info"]["returnedGranularity"] == "record" and sets[0]["results"]
        assert body["info"]["booleanResultSets"] == [
            {"id": "ctl", "setType": "dataset", "exists": True}
        ]

    def test_both_layers_close_the_per_person_oracle_returns_200(self, client, monkeypatch):
        # /individuals/{id}/g_variants at the boolean tier (anonymous, controlled "ctl").
        # Two layers keep it from telling whether a named person carries variants:
        # the per-person guard, and beneath it the people rule (one person never
        # reaches the threshold). Only with both switched off does the oracle return.
        from server.beacon import service

        def answer(person):
            return client.get(
                BASE + f"/individuals/{person}/g_variants",
                params={
                    "referenceName": "chr1",
                    "start": "0",
                    "end": "100000000",
                    "datasetIds": "ctl",
                },
            ).json()["responseSummary"]["exists"]

        assert answer("DKP0001") is answer("NOPE") is False
        monkeypatch.setattr(service, "person_scoped", lambda req: False)
        assert answer("DKP0001") is answer("NOPE") is False  # the people rule alone
        monkeypatch.setattr(service, "min_people", lambda settings, tier: 0)
        assert answer("DKP0001") is True and answer("NOPE") is False  # the old oracle

    def test_no_dataset_ids_each_dataset_at_its_own_tier_returns_200(self, client, node):
        # no datasetIds: every dataset with data answers, the public ones exactly,
        # the controlled one at the boolean tier; no total in the summary
        body = get_and_post(
            client, "/g_variants", {"variantType": "SNP"}, includeResultsetResponses="ALL"
        )
        sets = {rs["id"]: rs for rs in body["response"]["resultSets"]}
        assert set(sets) == {"kg", "demo", "ann"}
        assert all(
            rs["info"]["returnedGranularity"] == "count" and rs["info"]["countPrecision"] == "exact"
            for rs in sets.values()
        )
        exact = get_and_post(client, "/g_variants", {"variantType": "SNP"}, datasetIds="demo")
        assert sets["demo"]["resultsCount"] == count(exact)
        assert [b["id"] for b in body["info"]["booleanResultSets"]] == ["ctl"]
        assert body["meta"]["returnedGranularity"] == "boolean"
        assert "numTotalResults" not in body["responseSummary"]

    def test_configuration_states_the_rule_returns_200(self, client, node):
        info = client.get(BASE + "/configuration").json()["response"]["info"]["privacy"]
        assert info["countThreshold"] == node.settings.beacon_count_threshold
        assert "at least 5 distinct people" in info["belowRecordTier"]
        assert info["queryBudget"]["perTier"]["boolean"] == {"minute": 0, "day": 5000}

    def test_rejected_token_returns_401(self, client, kit):
        r = client.get(
            BASE + "/g_variants",
            params={"variantType": "SNP"},
            headers={"Authorization": "Bearer not-a-token"},
        )
        assert r.status_code == 401
        validate_error(r.json())

    def test_queries_are_audited_returns_200(self, client, node):
        client.get(BASE + "/individuals", params={"filters": "NCIT:C20197", "datasetIds": "kg"})
        with node.db.session() as s:
            row = s.execute(
                sa.select(AuditEvent)
                .where(AuditEvent.api == "beacon")
                .order_by(AuditEvent.id.desc())
                .limit(1)
            ).scalar_one()
        assert row.query["filters"] == ["NCIT:C20197"]
        assert row.query["datasets"]["kg"]["tier"] == "record"
        assert "carriers" not in json.dumps(row.query)


def test_budget_exhausted_returns_429(settings, db):
    from server.web.app import create_app

    app = create_app(settings.with_overrides(beacon_rate_per_minute=2))
    with app.test_client() as c:
        codes = [c.get(BASE + "/individuals").status_code for _ in range(4)]
        assert codes[:2] == [200, 200] and codes[2:] == [429, 429]
        r = c.get(BASE + "/individuals")
        validate_error(r.json())
        assert r.json()["error"]["errorCode"] == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 60
    with db.session() as s:
        refused = (
            s.execute(sa.select(AuditEvent).where(AuditEvent.outcome == "refused")).scalars().all()
        )
    assert len(refused) == 3 and {e.status for e in refused} == {429}
    assert refused[0].query["budget"]["window"] == "minute"
    app.app.extensions["genomeport"].db.dispose()
