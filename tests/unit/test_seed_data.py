"""seed_data/: the generator reproduces the committed bytes, and the files hold what the
generator's parameters say (counts are derived from those parameters, never typed in)."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import re
import sys
from pathlib import Path

import pysam
import pytest

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "seed_data"


def _load_generator():
    name = "genomeport_seed_data_generate"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SEED / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
EXPECTED = gen.expected_counts()
REF = str(SEED / gen.REFERENCE)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("seed")
    return out, gen.generate(out)


def open_reads(sample: str, fmt: str) -> pysam.AlignmentFile:
    if fmt == "bam":
        return pysam.AlignmentFile(str(SEED / f"{sample}.bam"))
    return pysam.AlignmentFile(str(SEED / f"{sample}.cram"), reference_filename=REF)


# --------------------------------------------------------------------------- determinism


class TestDeterminism:
    def test_regenerated_files_are_byte_identical_to_committed(self, regenerated):
        _, files = regenerated
        assert files, "generator wrote nothing"
        for path in files:
            committed = SEED / path.name
            assert committed.is_file(), f"{path.name} is not committed"
            assert sha256(path) == sha256(committed), f"{path.name} differs from the committed file"

    def test_committed_directory_holds_exactly_the_generated_files(self, regenerated):
        _, files = regenerated
        present = {p.name for p in SEED.iterdir() if p.is_file()} - {"generate.py"}
        assert present == {p.name for p in files}

    def test_sha256sums_lists_every_other_file(self, regenerated):
        _, files = regenerated
        listed = {}
        for line in (SEED / "SHA256SUMS").read_text().splitlines():
            digest, name = line.split("  ", 1)
            listed[name] = digest
        assert set(listed) == {p.name for p in files} - {"SHA256SUMS"}
        for name, digest in listed.items():
            assert sha256(SEED / name) == digest, name

    def test_output_names_no_directory(self, regenerated):
        out, files = regenerated
        marker = str(out).encode()
        texts = [p.read_bytes() for p in files if p.suffix in (".json", ".md", ".fa", ".fai")]
        for sample in gen.READ_SAMPLES:
            for p in (out / f"{sample}.bam", out / f"{sample}.cram"):
                kw = {"reference_filename": str(out / gen.REFERENCE)} if p.suffix == ".cram" else {}
                with pysam.AlignmentFile(str(p), **kw) as f:
                    texts.append(str(f.header).encode())
            texts.append(p.read_bytes()[:64])  # CRAM file definition (file id)
        texts.append(gzip.decompress((out / "cohort.vcf.gz").read_bytes()))
        for text in texts:
            assert marker not in text
            assert str(REPO).encode() not in text


# --------------------------------------------------------------------------- reference


def test_reference_contigs_and_md5():
    with pysam.FastaFile(REF) as fa:
        assert list(zip(fa.references, fa.lengths, strict=False)) == list(gen.CONTIGS)
        md5 = {c: hashlib.md5(fa.fetch(c).upper().encode()).hexdigest() for c in fa.references}
        gap_contig, gap_start, gap_end = gen.N_GAP
        assert set(fa.fetch(gap_contig, gap_start, gap_end)) == {"N"}
    for sample in gen.READ_SAMPLES:
        for fmt in ("bam", "cram"):
            with open_reads(sample, fmt) as f:
                sq = f.header.to_dict()["SQ"]
            assert [(s["SN"], s["M5"], s["UR"], s["AS"]) for s in sq] == [
                (c, md5[c], gen.REFERENCE, gen.ASSEMBLY) for c, _ in gen.CONTIGS
            ]


# --------------------------------------------------------------------------- reads


@pytest.mark.parametrize("fmt", ["bam", "cram"])
@pytest.mark.parametrize("sample", gen.READ_SAMPLES)
def test_read_counts_match_parameters(sample, fmt):
    rc = EXPECTED["reads"]
    per_contig_mapped = {c: 0 for c, _ in gen.CONTIGS}
    per_contig_placed = {c: 0 for c, _ in gen.CONTIGS}
    unplaced, seen_unplaced, total = 0, False, 0
    with open_reads(sample, fmt) as f:
        header = f.header.to_dict()
        for read in f.fetch(until_eof=True):
            total += 1
            if read.reference_id < 0:
                unplaced += 1
                seen_unplaced = True
                assert read.is_unmapped and read.mate_is_unmapped
                continue
            assert not seen_unplaced, "placed read after the unplaced unmapped reads"
            if read.is_unmapped:
                per_contig_placed[read.reference_name] += 1
            else:
                per_contig_mapped[read.reference_name] += 1
                assert read.get_tag("NM") >= 0
            assert read.get_tag("RG") in gen.read_group_ids(sample)
    assert total == rc["total"]
    assert unplaced == rc["unplaced_unmapped"]
    assert per_contig_mapped == rc["per_contig_mapped"]
    assert per_contig_placed == rc["per_contig_placed_unmapped"]
    assert header["HD"]["SO"] == "coordinate"
    assert "PG" not in header
    assert [rg["ID"] for rg in header["RG"]] == gen.read_group_ids(sample)
    assert {rg["SM"] for rg in header["RG"]} == {sample}


@pytest.mark.parametrize("sample", gen.READ_SAMPLES)
def test_indexes_answer_region_queries(sample):
    contig, length = gen.CONTIGS[0]
    with open_reads(sample, "bam") as bam, open_reads(sample, "cram") as cram:
        stats = {s.contig: (s.mapped, s.unmapped) for s in bam.get_index_statistics()}
        assert stats == {
            c: (
                EXPECTED["reads"]["per_contig_mapped"][c],
                EXPECTED["reads"]["per_contig_placed_unmapped"][c],
            )
            for c, _ in gen.CONTIGS
        }
        assert bam.count(contig, 10_000, 12_000) == cram.count(contig, 10_000, 12_000) > 0
        assert sum(1 for _ in bam.fetch("*")) == EXPECTED["reads"]["unplaced_unmapped"]


@pytest.mark.parametrize("sample", gen.READ_SAMPLES)
def test_cram_decodes_to_the_bam_records(sample):
    with open_reads(sample, "bam") as bam, open_reads(sample, "cram") as cram:
        for a, b in zip(bam.fetch(until_eof=True), cram.fetch(until_eof=True), strict=True):
            assert (
                a.query_name,
                a.flag,
                a.reference_id,
                a.reference_start,
                a.cigarstring,
                a.mapping_quality,
                a.next_reference_start,
                a.template_length,
                a.query_sequence,
                list(a.query_qualities),
            ) == (
                b.query_name,
                b.flag,
                b.reference_id,
                b.reference_start,
                b.cigarstring,
                b.mapping_quality,
                b.next_reference_start,
                b.template_length,
                b.query_sequence,
                list(b.query_qualities),
            )
            if not a.is_unmapped:
                assert a.get_tag("NM") == b.get_tag("NM")  # htslib recomputes NM on decode


def test_reads_carry_the_sample_genotypes():
    """At sites where a read sample is homozygous for an ALT SNV, most reads show it."""
    checked = 0
    with pysam.VariantFile(str(SEED / "cohort.vcf.gz")) as vcf:
        for sample in gen.READ_SAMPLES:
            with open_reads(sample, "bam") as bam:
                for rec in vcf.fetch():
                    gt = rec.samples[sample]["GT"]
                    if gt[0] is None or gt[0] == 0 or gt[0] != gt[1]:
                        continue
                    alt = rec.alleles[gt[0]]
                    if len(rec.ref) != 1 or len(alt) != 1:
                        continue
                    counts = bam.count_coverage(
                        rec.chrom, rec.start, rec.stop, quality_threshold=0, read_callback="all"
                    )
                    depth = {b: c[0] for b, c in zip("ACGT", counts, strict=False)}
                    if sum(depth.values()) >= 3:
                        assert depth[alt] > sum(depth.values()) / 2, (sample, rec.chrom, rec.pos)
                        checked += 1
    assert checked >= 10


# --------------------------------------------------------------------------- variants


@pytest.mark.parametrize("name", ["cohort.vcf.gz", "cohort.bcf"])
def test_variant_counts_match_parameters(name):
    vc = EXPECTED["variants"]
    with pysam.VariantFile(str(SEED / name)) as f:
        assert list(f.header.samples) == gen.sample_ids()
        assert len(f.header.samples) == vc["samples"]
        assert list(f.header.contigs) == [c for c, _ in gen.CONTIGS]
        per_contig = {c: sum(1 for _ in f.fetch(c)) for c, _ in gen.CONTIGS}
        records = list(f.fetch())
    assert per_contig == vc["per_contig"]
    assert len(records) == vc["records"]
    assert sum(1 for r in records if len(r.alts) > 1) == vc["multiallelic"]
    svs = [r for r in records if r.alts[0].startswith("<")]
    assert [(r.chrom, r.start, r.info["SVTYPE"], r.stop - r.start - 1) for r in svs] == [
        (c, s, t, n) for c, s, n, t in gen.STRUCTURAL_VARIANTS
    ]
    for r in svs:
        assert r.alts == (f"<{r.info['SVTYPE']}>",)
    for r in records:
        called = [a for s in r.samples.values() for a in s["GT"] if a is not None]
        assert r.info["AN"] == len(called)
        assert list(r.info["AC"]) == [called.count(i) for i in range(1, len(r.alleles))]
        assert all(ac > 0 for ac in r.info["AC"])
        assert list(r.info["AF"]) == pytest.approx(
            [ac / len(called) for ac in r.info["AC"]], rel=1e-5
        )


def test_vcf_and_bcf_hold_the_same_records():
    with (
        pysam.VariantFile(str(SEED / "cohort.vcf.gz")) as v,
        pysam.VariantFile(str(SEED / "cohort.bcf")) as b,
    ):
        assert [str(r) for r in v.fetch()] == [str(r) for r in b.fetch()]


def test_vcf_ref_alleles_match_reference():
    with pysam.FastaFile(REF) as fa, pysam.VariantFile(str(SEED / "cohort.vcf.gz")) as v:
        for r in v.fetch():
            assert fa.fetch(r.chrom, r.start, r.start + len(r.ref)) == r.ref


# --------------------------------------------------------------------------- metadata


def load(name: str):
    return json.loads((SEED / name).read_text(encoding="utf-8"))


def test_metadata_links_and_terms(testdata):
    individuals, biosamples = load("individuals.bff.json"), load("biosamples.bff.json")
    assert len(individuals) == EXPECTED["individuals"]
    assert len(biosamples) == EXPECTED["biosamples"]
    assert [b["id"] for b in biosamples] == gen.sample_ids()
    ind_ids = {i["id"] for i in individuals}
    assert len(ind_ids) == len(individuals)
    assert {b["individualId"] for b in biosamples} == ind_ids
    for b in biosamples:
        assert re.fullmatch(r"P\d+Y", b["collectionMoment"])
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", b["collectionDate"])
    regions = {r["id"]: r["label"] for r in gen.REGIONS}
    assert len(regions) == 5
    hpo_used, icd_used = {}, set()
    for i in individuals:
        assert i["sex"] in (
            {"id": "NCIT:C16576", "label": "female"},
            {"id": "NCIT:C20197", "label": "male"},
        )
        assert regions[i["geographicOrigin"]["id"]] == i["geographicOrigin"]["label"]
        for f in i.get("phenotypicFeatures", []):
            hpo_used[f["featureType"]["id"]] = f["featureType"]["label"]
        for d in i.get("diseases", []):
            assert re.fullmatch(r"ICD10:[A-Z]\d\d(\.\d+)?", d["diseaseCode"]["id"])
            assert re.fullmatch(r"P\d+Y", d["ageOfOnset"]["iso8601duration"])
            icd_used.add(d["diseaseCode"]["id"])
    assert len(hpo_used) >= 5 and len(icd_used) >= 5
    names = {}
    with gzip.open(testdata / "annotations" / "hp.obo.gz", "rt", encoding="utf-8") as obo:
        term = None
        for line in obo:
            if line.startswith("id: HP:"):
                term = line[4:].strip()
            elif line.startswith("name: ") and term:
                names[term] = line[6:].strip()
                term = None
    for hp, label in hpo_used.items():
        assert names.get(hp) == label, hp


def test_dataset_and_cohort_summaries():
    datasets, cohorts = load("datasets.bff.json"), load("cohorts.bff.json")
    individuals = load("individuals.bff.json")
    assert [d["id"] for d in datasets] == [gen.DATASET_ID]
    (cohort,) = cohorts
    assert cohort["cohortSize"] == len(individuals)
    genders = cohort["collectionEvents"][0]["eventGenders"]["distribution"]["genders"]
    assert sum(genders.values()) == len(individuals)
    assert genders["female"] == sum(i["sex"]["label"] == "female" for i in individuals)
