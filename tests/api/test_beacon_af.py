"""Frequency-only datasets: a sites-only VCF with per-population INFO fields,
written here with bcftools ``+fill-tags -S`` from the 1000 Genomes chr22 cohort
(groups by country of birth and sex from the cohort's individuals), then its
genotypes dropped; loaded with ``load-frequencies`` and asked through
g_variants, which gives back what pysam computes from the original genotypes.
No genotypes or individuals are stored. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import pysam
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from server.beacon.af import load_frequencies
from server.beacon.tables import BeaconFrequency, BeaconRecord, BeaconSample
from server.beacon.tiers import round_count
from server.cli import Ctx, main
from server.errors import InvalidInput
from server.registry import add_dataset
from tests.support.beacon import BFF, COUNTRY, KG_VCF, SEX, trusted_node
from tests.unit.beacon.schemas import validate_response


@lru_cache(maxsize=1)
def groups_of_samples() -> dict[str, list[str]]:
    """{sample: [groups]}: its country, country_sex and sex, from the cohort's individuals."""
    samples = set(pysam.VariantFile(str(KG_VCF)).header.samples)
    out = {}
    for ind in json.loads((BFF / "individuals.json").read_text()):
        if ind["id"] not in samples:
            continue
        sex = SEX[ind["sex"]["label"]]
        country = COUNTRY.get((ind.get("geographicOrigin") or {}).get("label"))
        out[ind["id"]] = [sex] + ([country, f"{country}_{sex}"] if country else [])
    return out


def write_frequency_vcf(tmp: Path) -> Path:
    """bcftools: INFO stripped, +fill-tags per group, genotypes dropped."""
    groups = tmp / "groups.txt"
    groups.write_text("".join(f"{s}\t{','.join(g)}\n" for s, g in groups_of_samples().items()))
    out = tmp / "frequencies.vcf.gz"
    script = (
        f"bcftools annotate -x INFO {KG_VCF} -Ou 2>/dev/null"
        f" | bcftools +fill-tags -Ou -- -S {groups} -t AC,AN,AF,AC_Hom,AC_Het,AC_Hemi"
        f" | bcftools view -G -Oz -o {out}"
    )
    subprocess.run(["bash", "-o", "pipefail", "-c", script], check=True)
    subprocess.run(["bcftools", "index", "-t", str(out)], check=True)
    return out


LOADED: dict[str, Path] = {}  # the file each module's node loaded


def populate(db, tmp: Path) -> None:
    vcf = LOADED["vcf"] = write_frequency_vcf(tmp)
    add_dataset(db, "goe", access="public", assembly="GRCh38")
    add_dataset(db, "goec", access="controlled", assembly="GRCh38", grant_value="urn:ds:goec")
    load_frequencies(db, vcf, "goe", progress=False)
    load_frequencies(db, vcf, "goec", progress=False)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def node(request, tmp_path_factory, kit):
    tmp = tmp_path_factory.mktemp("af-data")
    yield from trusted_node(request, tmp_path_factory, kit, lambda db: populate(db, tmp))


@lru_cache(maxsize=1)
def expected_sites(n: int = 8):
    """pysam on the genotypes: (start, ref, alt, {label: (ac, an, hom, het)}) of
    biallelic SNPs, spread over the frequency range."""
    members: dict[str, list[str]] = {}
    for s, gs in groups_of_samples().items():
        for g in gs:
            members.setdefault(g, []).append(s)
    sites = []
    with pysam.VariantFile(str(KG_VCF)) as vf:
        everyone = list(vf.header.samples)
        members["goe"] = everyone
        for rec in vf:
            if len(rec.alts or ()) != 1 or len(rec.ref) != 1 or len(rec.alts[0]) != 1:
                continue
            gt = {s: rec.samples[s]["GT"] for s in everyone}
            counts = {}
            for label, ss in members.items():
                called = [a for s in ss for a in (gt[s] or ()) if a is not None]
                hom = sum(1 for s in ss if gt[s] and len(gt[s]) == 2 and gt[s] == (1, 1))
                het = sum(1 for s in ss if gt[s] and len(gt[s]) == 2 and sorted(gt[s]) == [0, 1])
                counts[label] = (sum(1 for a in called if a == 1), len(called), hom, het)
            sites.append((counts["goe"][0], rec.start, rec.ref, rec.alts[0], counts))
    sites.sort(key=lambda x: -x[0])
    picks = sites[:: max(len(sites) // n, 1)][:n]
    return [(start, ref, alt, counts) for _, start, ref, alt, counts in picks]


def g_variants(client, start, ref, alt, datasets, token=None):
    body = {
        "meta": {"apiVersion": "2.0"},
        "query": {
            "requestParameters": {
                "referenceName": "22",
                "start": [start],
                "referenceBases": ref,
                "alternateBases": alt,
                "datasetIds": datasets,
            },
            "requestedGranularity": "record",
            "includeResultsetResponses": "ALL",
        },
    }
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = client.post("/beacon/v2/g_variants", json=body, headers=headers)
    assert r.status_code == 200, r.text
    validate_response(r.json(), "g_variants")
    return r.json()


class TestLoadFrequencies:
    @pytest.mark.parametrize("which", range(8))
    def test_frequencies_come_back_as_pysam_computes_returns_200(self, node, which):
        start, ref, alt, counts = expected_sites()[which]
        body = g_variants(node.client, start, ref, alt, ["goe"])
        rs = body["response"]["resultSets"][0]
        assert rs["id"] == "goe" and rs["resultsCount"] == 1
        freqs = {
            f["population"]: f
            for item in rs["results"][0]["frequencyInPopulations"]
            for f in item["frequencies"]
        }
        want = {label: c for label, c in counts.items() if c[1]}  # groups with calls
        assert set(freqs) == set(want)
        for label, (ac, an, hom, het) in want.items():
            f = freqs[label]
            got = (
                f["alleleCount"],
                f["alleleNumber"],
                f["alleleCountHomozygous"],
                f["alleleCountHeterozygous"],
                f["alleleCountHemizygous"],
            )
            assert got == (ac, an, hom, het, 0), label
            assert f["alleleFrequency"] == pytest.approx(ac / an)

    def test_nothing_about_people_is_stored(self, node):
        with node.db.session() as s:
            for table in (BeaconSample, BeaconRecord):
                n = s.scalar(
                    sa.select(sa.func.count()).select_from(table).where(table.dataset_id == "goe")
                )
                assert n == 0, table.__tablename__
            rows = s.scalar(
                sa.select(sa.func.count())
                .select_from(BeaconFrequency)
                .where(BeaconFrequency.dataset_id == "goe")
            )
        assert rows == sum(len(r.alts or ()) for r in pysam.VariantFile(str(KG_VCF)))
        body = {"meta": {"apiVersion": "2.0"}, "query": {"requestedGranularity": "record"}}
        body["query"]["requestParameters"] = {"datasetIds": ["goe"]}
        r = node.client.post("/beacon/v2/individuals", json=body).json()
        assert r["responseSummary"]["exists"] is False
        assert r["response"]["resultSets"] == []

    def test_controlled_copy_follows_the_tiers_returns_200(self, node, kit):
        start, ref, alt, counts = expected_sites()[0]  # the most frequent allele
        anon = g_variants(node.client, start, ref, alt, ["goec"])
        assert anon["meta"]["returnedGranularity"] == "boolean"
        assert anon["info"]["booleanResultSets"] == [
            {"id": "goec", "setType": "dataset", "exists": True}
        ]
        assert "response" not in anon
        granted = g_variants(node.client, start, ref, alt, ["goec"], kit.grant("urn:ds:goec"))
        rs = granted["response"]["resultSets"][0]
        whole = rs["results"][0]["frequencyInPopulations"][0]["frequencies"][0]
        assert whole["population"] == "goec"
        assert (whole["alleleCount"], whole["alleleNumber"]) == counts["goe"][:2]
        counted = g_variants(node.client, start, ref, alt, ["goec"], kit.registered())
        rs = counted["response"]["resultSets"][0]
        assert rs["results"] == [] and rs["resultsCount"] == round_count(1, node.settings)

    def test_rare_allele_is_invisible_below_the_record_tier_returns_200(self, node, kit):
        # an allele carried by one person: visible at the record tier, invisible
        # at the count tier (the people rule); with the threshold at 0 it shows
        with pysam.VariantFile(str(KG_VCF)) as vf:
            for rec in vf:
                if len(rec.alts) == 1 and len(rec.ref) == 1 == len(rec.alts[0]):
                    carriers = sum(1 for s in rec.samples.values() if 1 in (s["GT"] or ()))
                    if carriers == 1:
                        break
        site = (rec.start, rec.ref, rec.alts[0])
        granted = g_variants(node.client, *site, ["goec"], kit.grant("urn:ds:goec"))
        assert granted["response"]["resultSets"][0]["resultsCount"] == 1
        counted = g_variants(node.client, *site, ["goec"], kit.registered())
        assert counted["responseSummary"]["exists"] is False

    def test_load_again_replaces_and_bad_files_change_nothing(self, node, tmp_path):
        vcf = LOADED["vcf"]
        assert load_frequencies(node.db, vcf, "goe", progress=False).status == "unchanged"
        # new bytes at the same path (bcftools notes its command in the header)
        vcf.unlink()
        shutil.move(write_frequency_vcf(tmp_path), vcf)

        def rows():
            with node.db.session() as s:
                q = sa.select(sa.func.count()).select_from(BeaconFrequency)
                return s.scalar(q.where(BeaconFrequency.dataset_id == "goe"))

        before = rows()
        assert load_frequencies(node.db, vcf, "goe", progress=False).status == "loaded"
        assert load_frequencies(node.db, vcf, "goe", progress=False).status == "unchanged"
        assert rows() == before  # the earlier load of that file was replaced, not added to
        (tmp_path / "other.vcf").write_text(MAPPED_VCF)  # fields of other names
        with pytest.raises(InvalidInput, match="no per-population INFO fields"):
            load_frequencies(node.db, tmp_path / "other.vcf", "goe", progress=False)
        assert rows() == before


MAPPED_VCF = """##fileformat=VCFv4.2
##reference=GRCh38
##contig=<ID=chr22,length=50818468>
##INFO=<ID=cnt_dk,Number=A,Type=Integer,Description="alt alleles, Denmark">
##INFO=<ID=num_dk,Number=1,Type=Integer,Description="alleles, Denmark">
##INFO=<ID=homs_dk,Number=A,Type=Integer,Description="homozygous people, Denmark">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO
chr22\t16050075\trs1\tA\tG,T\t.\tPASS\tcnt_dk=7,2;num_dk=40;homs_dk=1,0
chr22\t16050115\t.\tG\tA\t.\tPASS\tcnt_dk=30;num_dk=40;homs_dk=12
"""


def test_mapping_file_names_other_fields(settings, db, tmp_path):
    add_dataset(db, "dk", access="public", assembly="GRCh38")
    (tmp_path / "f.vcf").write_text(MAPPED_VCF)
    (tmp_path / "m.yaml").write_text("DK: {AC: cnt_dk, AN: num_dk, nhomalt: homs_dk}\n")
    r = CliRunner().invoke(
        main,
        [
            "beacon",
            "load-frequencies",
            str(tmp_path / "f.vcf"),
            "--dataset",
            "dk",
            "--mapping",
            str(tmp_path / "m.yaml"),
            "--quiet",
        ],
        obj=Ctx(settings),
    )
    assert r.exit_code == 0, r.output
    with db.session() as s:
        rows = {
            (x.start, x.alt): x.populations
            for x in s.scalars(sa.select(BeaconFrequency).where(BeaconFrequency.dataset_id == "dk"))
        }
    # POS 16050075 is start 16050074 (0-based); het = AC - 2 hom where not given
    assert rows == {
        (16050074, "G"): {"DK": [7, 40, 1, None, None]},
        (16050074, "T"): {"DK": [2, 40, 0, None, None]},
        (16050114, "A"): {"DK": [30, 40, 12, None, None]},
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text("DK: {AC: cnt_dk, AN: nope}\n")
    r = CliRunner().invoke(
        main,
        ["beacon", "load-frequencies", str(tmp_path / "f.vcf"), "--dataset", "dk"]
        + ["--mapping", str(bad), "--quiet"],
        obj=Ctx(settings),
    )
    assert r.exit_code == 1 and "no INFO field 'nope'" in r.output
