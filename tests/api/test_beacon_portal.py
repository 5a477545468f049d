"""The GDI User Portal's Beacon requests, sent as its dataset-discovery service
sends them, answered as it reads them; compared with pysam on the same VCF and
the cohort's individuals (sex, country of birth), for a public and a
controlled copy of the 1000 Genomes chr22 cohort, anonymous and with grants.

The request bodies are those the portal's code builds
(``BeaconIndividualsRequestMapper``, ``BeaconGVariantsRequestMapper``: meta with
apiVersion 2.0, ``includeResultsetResponses: HIT``, record granularity,
``testMode: false``, the generated model's default pagination, filters with
``scope: individual``, requestParameters as a map, null when empty); what the
portal reads back is what ``BeaconDatasetIdsCollector`` (resultSets of
setType dataset with an id and a resultsCount above 0) and the g_variants
mapper (each result's ``frequencyInPopulations[*].frequencies[*]``) read.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import lru_cache

import pysam
import pytest

from server.beacon.metadata import load_metadata
from server.beacon.tiers import adjust
from server.beacon.vcf import load_vcf
from server.registry import add_dataset
from tests.support.beacon import BFF, COUNTRY, KG_VCF, SEX, trusted_node

GRANT = "urn:ds:kgc"


def populate(db) -> None:
    add_dataset(db, "kg", access="public", assembly="GRCh38")
    add_dataset(db, "kgc", access="controlled", assembly="GRCh38", grant_value=GRANT)
    for ds in ("kg", "kgc"):
        load_vcf(db, KG_VCF, ds, progress=False)
        load_metadata(db, sorted(BFF.glob("individuals.json")), ds, progress=False)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def node(request, tmp_path_factory, kit):
    yield from trusted_node(request, tmp_path_factory, kit, populate)


# ---------------------------------------------------------------- the portal's bodies
def individuals_body(filters, request_parameters=None) -> dict:
    """``BeaconIndividualsRequestMapper.from``: as the generated model serializes."""
    return {
        "meta": {"apiVersion": "2.0"},
        "query": {
            "filters": filters,
            "includeResultsetResponses": "HIT",
            "pagination": {"skip": 0, "limit": 1},
            "requestParameters": request_parameters,
            "requestedGranularity": "record",
            "testMode": False,
        },
    }


def g_variants_body(params: dict, filters=()) -> dict:
    """``BeaconGVariantsRequestMapper.map``: flat requestParameters, no filters
    (the current portal filters populations itself), or the population filters
    an earlier version sent with ``scope: population``."""
    return {
        "meta": {"apiVersion": "2.0"},
        "query": {
            "filters": list(filters),
            "includeResultsetResponses": "HIT",
            "pagination": {},
            "requestParameters": params,
            "requestedGranularity": "record",
            "testMode": False,
        },
    }


def portal_counts(body: dict) -> dict[str, int]:
    """What ``BeaconDatasetIdsCollector.collect`` keeps: {dataset id: resultsCount}."""
    sets = (body.get("response") or {}).get("resultSets") or []
    return {
        rs["id"]: rs["resultsCount"]
        for rs in sets
        if rs and rs.get("setType") == "dataset" and rs.get("id") and rs.get("resultsCount")
    }


def portal_frequencies(body: dict) -> dict[tuple[str, str], dict]:
    """What the g_variants mapper flattens: {(dataset, population): frequency}
    (each row also names the set's beaconId)."""
    out = {}
    for rs in (body.get("response") or {}).get("resultSets") or []:
        assert rs["beaconId"] == body["meta"]["beaconId"]
        for result in rs.get("results") or []:
            for item in result.get("frequencyInPopulations") or []:
                for f in item.get("frequencies") or []:
                    out[(rs["id"], f["population"])] = f
    return out


# ---------------------------------------------------------------- expected, from pysam
@lru_cache(maxsize=1)
def cohort():
    """{individual: (sex code, country or None)} for individuals that are VCF samples."""
    samples = set(pysam.VariantFile(str(KG_VCF)).header.samples)
    out = {}
    for ind in json.loads((BFF / "individuals.json").read_text()):
        if ind["id"] in samples:
            origin = (ind.get("geographicOrigin") or {}).get("label")
            out[ind["id"]] = (SEX[ind["sex"]["label"]], COUNTRY.get(origin))
    return out


@lru_cache(maxsize=1)
def common_alleles(n: int = 6):
    """(start, ref, alt, {sample: copies of alt}) of biallelic SNPs of all-diploid
    calls, the most frequent first."""
    found = []
    with pysam.VariantFile(str(KG_VCF)) as vf:
        for rec in vf:
            if len(rec.alts or ()) != 1 or len(rec.ref) != 1 or len(rec.alts[0]) != 1:
                continue
            gts = {s: rec.samples[s]["GT"] for s in rec.samples}
            if any(g is None or len(g) != 2 or None in g for g in gts.values()):
                continue
            copies = {s: sum(1 for a in g if a == 1) for s, g in gts.items()}
            found.append((sum(copies.values()), rec.start, rec.ref, rec.alts[0], copies))
    found.sort(key=lambda x: -x[0])
    # spread over the frequency range: some common, some less so
    picks = found[:: max(len(found) // n, 1)][:n]
    return [(start, ref, alt, copies) for _, start, ref, alt, copies in picks]


def expected_by_country(copies: dict) -> dict[str, tuple[int, int, int, int]]:
    groups: dict[str, list[str]] = {}
    for ind, (sex, country) in cohort().items():
        if country:
            groups.setdefault(country, []).append(ind)
            groups.setdefault(f"{country}_{sex}", []).append(ind)
    out = {}
    for label, members in groups.items():
        hom = sum(1 for s in members if copies.get(s) == 2)
        het = sum(1 for s in members if copies.get(s) == 1)
        out[label] = (het + 2 * hom, 2 * len(members), hom, het)
    return out


def female_individuals() -> int:
    return sum(
        1
        for i in json.loads((BFF / "individuals.json").read_text())
        if i["sex"]["id"] == "NCIT:C16576"
    )


def post(client, path, body, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = client.post("/beacon/v2" + path, json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


FEMALE = [{"id": "NCIT:C16576", "scope": "individual"}]


# ---------------------------------------------------------------- individuals
class TestPostIndividuals:
    def test_anonymous_gets_the_public_count_exactly_returns_200(self, node):
        body = post(node.client, "/individuals", individuals_body(FEMALE))
        assert portal_counts(body) == {"kg": female_individuals()}
        rs = body["response"]["resultSets"][0]
        assert rs["info"]["countPrecision"] == "exact"
        # the controlled copy says only that it has matches, with no count
        assert body["info"]["booleanResultSets"] == [
            {"id": "kgc", "setType": "dataset", "exists": True}
        ]

    def test_without_request_parameters_key_returns_200(self, node):
        body = individuals_body(FEMALE)
        del body["query"]["requestParameters"]  # a serializer that leaves nulls out
        assert portal_counts(post(node.client, "/individuals", body)) == {
            "kg": female_individuals()
        }

    def test_grant_gets_the_controlled_count_exactly_returns_200(self, node, kit):
        body = post(node.client, "/individuals", individuals_body(FEMALE), kit.grant(GRANT))
        n = female_individuals()
        assert portal_counts(body) == {"kg": n, "kgc": n}

    def test_registered_gets_the_controlled_count_rounded_returns_200(self, node, kit):
        body = post(node.client, "/individuals", individuals_body(FEMALE), kit.registered())
        n = female_individuals()
        counts = portal_counts(body)
        assert counts == {"kg": n, "kgc": adjust(n, node.settings, exact=False)}
        assert counts["kgc"] % node.settings.beacon_count_rounding == 0
        kgc = [rs for rs in body["response"]["resultSets"] if rs["id"] == "kgc"][0]
        assert kgc["info"]["countPrecision"] == "rounded" and kgc["results"] == []

    def test_variant_entries_and_sex_filter_count_female_carriers_returns_200(self, node, kit):
        # the portal's ENTRIES facets: requestParameters as a map of strings
        for start, ref, alt, copies in common_alleles()[:3]:
            params = {
                "referenceName": "chr22",
                "start": str(start),
                "referenceBases": ref,
                "alternateBases": alt,
            }
            want = sum(1 for s, c in copies.items() if c and cohort().get(s, ("",))[0] == "F")
            body = post(
                node.client, "/individuals", individuals_body(FEMALE, params), kit.grant(GRANT)
            )
            assert portal_counts(body) == ({"kg": want, "kgc": want} if want else {}), params


# ---------------------------------------------------------------- g_variants
class TestPostGVariants:
    def _check(self, body, datasets):
        got = portal_frequencies(body)
        checked = 0
        for ds in datasets:
            expected = expected_by_country(self.copies)
            for label, (ac, an, hom, het) in expected.items():
                f = got[(ds, label)]
                assert (
                    f["alleleCount"],
                    f["alleleNumber"],
                    f["alleleCountHomozygous"],
                    f["alleleCountHeterozygous"],
                    f["alleleCountHemizygous"],
                ) == (ac, an, hom, het, 0), (ds, label)
                assert f["alleleFrequency"] == pytest.approx(ac / an)
                checked += 1
        return got, checked

    @pytest.mark.parametrize("which", range(6))
    def test_frequencies_by_country_and_sex_equal_pysam_returns_200(self, node, kit, which):
        start, ref, alt, self.copies = common_alleles()[which]
        params = {
            "referenceName": "22",
            "start": [start],
            "referenceBases": ref,
            "alternateBases": alt,
            "assemblyId": "GRCh38",
        }
        anon = post(node.client, "/g_variants", g_variants_body(params))
        got, checked = self._check(anon, ["kg"])
        assert checked == 6  # GB, GB_F, GB_M, IE, IE_F, IE_M
        assert not [k for k in got if k[0] == "kgc"]  # boolean tier: no records
        granted = post(node.client, "/g_variants", g_variants_body(params), kit.grant(GRANT))
        _, checked = self._check(granted, ["kg", "kgc"])
        assert checked == 12
        # the labels the portal reads as populations (country, country_sex, sex)
        portal_form = {
            label
            for ds, label in portal_frequencies(granted)
            if ds == "kg" and re.fullmatch(r"[A-Z]{2}(_[FM])?|female|male", label)
        }
        assert portal_form == {"female", "male"} | set(expected_by_country(self.copies))

    def test_population_filters_keep_the_asked_population_returns_200(self, node):
        start, ref, alt, copies = common_alleles()[0]
        params = {"referenceName": "22", "start": [start], "referenceBases": ref}
        params["alternateBases"] = alt
        filters = [
            {"id": "sexFilter", "operator": "=", "value": "female", "scope": "population"},
            {"id": "countryFilter", "operator": "=", "value": "GB", "scope": "population"},
        ]
        body = post(node.client, "/g_variants", g_variants_body(params, filters))
        got = portal_frequencies(body)
        assert set(got) == {("kg", "GB_F")}
        ac, an, hom, het = expected_by_country(copies)["GB_F"]
        assert (
            got[("kg", "GB_F")]["alleleCount"] == ac and got[("kg", "GB_F")]["alleleNumber"] == an
        )
        only_sex = post(node.client, "/g_variants", g_variants_body(params, filters[:1]))
        labels = Counter(label for _, label in portal_frequencies(only_sex))
        assert set(labels) == {"female", "GB_F", "IE_F"}
