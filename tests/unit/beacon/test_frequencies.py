"""frequencyInPopulations by sex and population, from the stored carrier and
homozygous-carrier bitmaps, against genotypes read sample by sample; the tier
rule applied to every count below the record tier."""

from __future__ import annotations

import json
import random

import sqlalchemy as sa

from server.beacon import engine
from server.beacon.frequencies import frequencies
from server.beacon.metadata import load_metadata
from server.beacon.service import adjust
from server.beacon.tables import BeaconVariant
from server.beacon.vcf import load_vcf
from server.settings import Settings
from tests.unit.beacon.conftest import add_dataset, visible_alleles

SEXES = [("NCIT:C16576", "female"), ("NCIT:C20197", "male")]
POPS = [("NCIT:C42331", "African"), ("NCIT:C41261", "White"), None]


def _write(tmp_path, n_samples=60, n_records=30, seed=5, haploid_record=True):
    rng = random.Random(seed)
    samples = [f"S{i:03d}" for i in range(n_samples)]
    inds = []
    for i, s in enumerate(samples[:-3]):  # the last three samples have no record
        ind = {"id": s, "sex": dict(zip(("id", "label"), SEXES[i % 2], strict=False))}
        pop = POPS[i % 3]
        if pop:
            ind["ethnicity"] = dict(zip(("id", "label"), pop, strict=False))
        inds.append(ind)
    (tmp_path / "individuals.json").write_text(json.dumps(inds))
    lines = [
        "##fileformat=VCFv4.2",
        "##contig=<ID=chr1,length=248956422>",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(samples),
    ]
    genotypes = {}
    for r in range(n_records):
        pos = 1000 + 10 * r
        gts = [
            rng.choice(["0|0", "0|0", "0|1", "1|0", "1|1", "0/1", "1/2", "2|2"]) for _ in samples
        ]
        if haploid_record and r == 0:
            gts[0] = "1"  # a haploid call: no per-subset allele number
        genotypes[pos] = gts
        lines.append(f"chr1\t{pos}\t.\tA\tC,G\t.\tPASS\t.\tGT\t" + "\t".join(gts))
    (tmp_path / "t.vcf").write_text("\n".join(lines) + "\n")
    return samples, inds, genotypes


def _expected(samples, inds, gts, allele: int) -> dict:
    members: dict[str, set] = {}
    for ind in inds:
        members.setdefault(ind["sex"]["label"], set()).add(ind["id"])
        if "ethnicity" in ind:
            members.setdefault(ind["ethnicity"]["label"], set()).add(ind["id"])
    out = {}
    for label, group in members.items():
        copies = [
            gts[i].replace("|", "/").split("/").count(str(allele))
            for i, s in enumerate(samples)
            if s in group
        ]
        hom = sum(1 for c in copies if c == 2)
        het = sum(1 for c in copies if c == 1)
        out[label] = (het + 2 * hom, 2 * len(copies), hom, het)
    return out


def _rows(db, dataset):
    with db.session() as s:
        return sorted(visible_alleles(s, dataset), key=lambda r: r.pk)


def test_subset_counts_equal_per_sample_reading(db, tmp_path):
    ds = add_dataset(db, "fq")
    samples, inds, genotypes = _write(tmp_path)
    load_vcf(db, tmp_path / "t.vcf", ds, progress=False)
    load_metadata(db, [tmp_path / "individuals.json"], ds, progress=False)
    checked = 0
    with db.session() as s:
        ctx = engine.new_context(s)
        for row in _rows(db, ds):
            allele = "CG".index(row.alt) + 1
            freqs = {f["population"]: f for f in frequencies(ctx, ds, row, lambda n: n)}
            whole = freqs.pop(ds)
            assert (whole["alleleCount"], whole["alleleNumber"]) == (row.ac, row.an)
            if row.start == 999:  # the record with a haploid call
                assert freqs == {}
                continue
            want = _expected(samples, inds, genotypes[row.start + 1], allele)
            got = {
                k: (
                    f["alleleCount"],
                    f["alleleNumber"],
                    f["alleleCountHomozygous"],
                    f["alleleCountHeterozygous"],
                )
                for k, f in freqs.items()
            }
            assert got == want
            for f in freqs.values():
                assert f["alleleFrequency"] == f["alleleCount"] / f["alleleNumber"]
            checked += 1
    assert checked >= 50


def test_below_record_tier_counts_follow_the_tier_rule(db, tmp_path):
    ds = add_dataset(db, "fq", access="controlled")
    _write(tmp_path, n_samples=300, n_records=4, haploid_record=False)
    load_vcf(db, tmp_path / "t.vcf", ds, progress=False)
    load_metadata(db, [tmp_path / "individuals.json"], ds, progress=False)
    settings = Settings()
    with db.session() as s:
        ctx = engine.new_context(s)
        for row in _rows(db, ds):
            exact = frequencies(ctx, ds, row, lambda n: n)
            shown = frequencies(ctx, ds, row, lambda n: adjust(n, settings, False))
            assert [f["population"] for f in exact] == [f["population"] for f in shown]
            for e, a in zip(exact, shown, strict=False):
                for key in (
                    "alleleCount",
                    "alleleNumber",
                    "alleleCountHomozygous",
                    "alleleCountHeterozygous",
                ):
                    assert a[key] == adjust(e[key], settings, False)
                    assert a[key] % settings.beacon_count_rounding == 0
                assert a["alleleFrequency"] == (
                    a["alleleCount"] / a["alleleNumber"] if a["alleleNumber"] else 0.0
                )


def test_rows_without_homozygous_carriers_give_the_dataset_entry(db, tmp_path):
    ds = add_dataset(db, "fq")
    _write(tmp_path, n_records=3, haploid_record=False)
    load_vcf(db, tmp_path / "t.vcf", ds, progress=False)
    load_metadata(db, [tmp_path / "individuals.json"], ds, progress=False)
    with db.session() as s:  # as rows loaded before revision 0004_beacon_frequencies
        s.execute(sa.update(BeaconVariant).values(hom_carriers=None))
    with db.session() as s:
        ctx = engine.new_context(s)
        for row in _rows(db, ds):
            assert [f["population"] for f in frequencies(ctx, ds, row, lambda n: n)] == [ds]
