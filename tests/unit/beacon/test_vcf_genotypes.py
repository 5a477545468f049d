"""Genotype counting of the VCF loader: the fast path for the common diploid
layout and the general path must give the same counts and carriers as a
plain per-sample reading of the genotypes, whatever the sample order, and bad
input must still be rejected with its line and nothing loaded."""

from __future__ import annotations

import random
import re

import pytest
import sqlalchemy as sa
from pyroaring import BitMap

from server.beacon.journal import LoadError
from server.beacon.store import PK_LOAD_SHIFT, VARIANT_COLUMNS, allele_number, genome_count
from server.beacon.tables import BeaconLoad, BeaconSample, BeaconVariant
from server.beacon.vcf import _DiploidTemplate, _SingleTemplate, load_vcf
from server.errors import InvalidInput
from tests.unit.beacon.conftest import add_dataset, visible_alleles

HEADER = (
    "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=248956422>\n"
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t"
)


def _genotypes(rng: random.Random, n_alt: int, kind: str) -> str:
    def allele() -> str:
        x = rng.random()
        return "." if x < 0.05 else "0" if x < 0.45 else str(rng.randint(1, n_alt))

    if kind == "haploid-mix" and rng.random() < 0.3:
        return allele()
    sep = {"phased": "|", "unphased": "/"}.get(kind) or rng.choice("|/")
    return f"{allele()}{sep}{allele()}"


def write_vcf(path, samples, n_records: int, seed: int) -> list[str]:
    """Records of every layout, with alleles frequent enough to need the
    dense carriers; returns the record lines."""
    rng = random.Random(seed)
    kinds = ["phased", "unphased", "mixed", "haploid-mix", "with-depth"]
    lines = []
    for r in range(n_records):
        n_alt = rng.choice([1, 1, 2, 3])
        alts = rng.sample(["C", "G", "T", "CA"], n_alt)
        kind = kinds[r % len(kinds)]
        gts = [_genotypes(rng, n_alt, kind) for _ in samples]
        fmt = "GT"
        if kind == "with-depth":
            fmt = "GT:DP"
            gts = [f"{g}:{rng.randint(0, 40)}" for g in gts]
        lines.append(
            f"chr1\t{1000 + 10 * r}\t.\tA\t{','.join(alts)}\t.\tPASS\t.\t{fmt}\t" + "\t".join(gts)
        )
    path.write_text(HEADER + "\t".join(samples) + "\n" + "\n".join(lines) + "\n")
    return lines


def expected_counts(lines, sample_idx: list[int]) -> dict:
    """(pos, alt) -> (AC, AN, hom, het, carriers, homozygous carriers) read sample by sample."""
    out = {}
    for line in lines:
        fields = line.split("\t")
        alts = fields[4].split(",")
        per_allele = {a: [0, 0, 0, BitMap(), BitMap()] for a in range(1, len(alts) + 1)}
        an = 0
        for col, value in enumerate(fields[9:]):
            alleles = re.split(r"[|/]", value.split(":")[0])
            called = [int(a) for a in alleles if a != "."]
            an += len(called)
            for a in set(called) - {0}:
                counts = per_allele[a]
                counts[0] += called.count(a)
                if "." not in alleles and all(x == a for x in called):
                    counts[1] += 1
                    counts[4].add(sample_idx[col])
                else:
                    counts[2] += 1
                counts[3].add(sample_idx[col])
        for a, (ac, hom, het, carriers, homs) in per_allele.items():
            out[(int(fields[1]), alts[a - 1])] = (ac, an, hom, het, carriers, homs)
    return out


def carried(counts: dict) -> dict:
    """The alleles some sample carries (the others are not records)."""
    return {k: v for k, v in counts.items() if v[0]}


def stored_counts(db, dataset_id: str) -> dict:
    """The dataset's records as queries read them (pending deltas included),
    with their allele numbers."""
    with db.session() as s:
        n = genome_count(s, dataset_id)
        rows = visible_alleles(s, dataset_id)
        return {
            (r.start + 1, r.alt): (
                r.ac,
                allele_number(r, n),
                r.hom,
                r.het,
                BitMap.deserialize(r.carriers),
                BitMap.deserialize(r.hom_carriers),
            )
            for r in rows
        }


def test_counts_and_carriers_match_a_per_sample_reading(db, tmp_path):
    add_dataset(db, "gt")
    samples = [f"S{i}" for i in range(120)]
    lines = write_vcf(tmp_path / "a.vcf", samples, 60, seed=1)
    result = load_vcf(db, tmp_path / "a.vcf", "gt", progress=False)
    assert result.records == 60
    assert stored_counts(db, "gt") == carried(expected_counts(lines, list(range(120))))


def test_second_file_with_other_sample_order_maps_carriers(db, tmp_path):
    add_dataset(db, "gt")
    samples = [f"S{i}" for i in range(120)]
    write_vcf(tmp_path / "a.vcf", samples, 5, seed=2)
    load_vcf(db, tmp_path / "a.vcf", "gt", progress=False)
    # reversed order plus two new samples: the file's columns are not the dataset's
    # indexes; its genomes replace those of a.vcf (refused without replace)
    others = ["N1"] + samples[::-1] + ["N2"]
    lines = write_vcf(tmp_path / "b.vcf", others, 40, seed=3)
    with pytest.raises(InvalidInput, match="already in dataset gt with other calls"):
        load_vcf(db, tmp_path / "b.vcf", "gt", progress=False)
    result = load_vcf(db, tmp_path / "b.vcf", "gt", progress=False, replace=True)
    assert sorted(result.replaced) == sorted(samples)
    with db.session() as s:
        index = dict(
            s.execute(
                sa.select(BeaconSample.name, BeaconSample.idx).where(
                    BeaconSample.dataset_id == "gt"
                )
            ).all()
        )
    assert stored_counts(db, "gt") == carried(
        expected_counts(lines, [index[name] for name in others])
    )


def test_template_leaves_uncommon_layouts_untouched():
    template = _DiploidTemplate(3, None)
    for gts in (
        b"0|1\t1\t0|0",
        b"0|1\t0|2\t0|0",
        b"0|1\t0-1\t0|0",
        b"0|1/0\t0|1\t0|0",
        b"0|1\t0|10\t0|0",
        b"0|1\t0|x\t0|0",
    ):
        lists = [[], []], [0, 0], [0, 0], [0, 0], [[], []]
        assert template.counts(gts, 1, *lists) is None
        assert lists == ([[], []], [0, 0], [0, 0], [0, 0], [[], []])
    lists = [[], [], []], [0] * 3, [0] * 3, [0] * 3, [[], [], []]
    assert template.counts(b"0|1\t2/2\t.|1", 2, *lists) == 5
    carriers, ac, hom, het, homs = lists
    assert (ac, hom, het) == ([0, 2, 2], [0, 0, 1], [0, 2, 0])
    assert carriers[1] == BitMap([0, 2]) and carriers[2] == BitMap([1])
    assert homs[1] == [] and homs[2] == BitMap([1])


def _bad_vcf(tmp_path, body: bytes):
    path = tmp_path / "bad.vcf"
    path.write_bytes((HEADER + "S1\tS2\n").encode() + body)
    return path


@pytest.mark.parametrize(
    "record, reason",
    [
        (b"chr1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0|1\t0-1\n", "separator"),
        (b"chr1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0|1\t0|x\n", "not a number"),
        (b"chr1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0|1\t1|2\n", "beyond the 1 ALT"),
        (b"chr1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0|1\n", "sample columns"),
        (b"chr1\t100\t.\tA\tG\t.\tPASS\t.\tGT:DP\t0|1:3\t0|0:\xff\n", "UTF-8"),
        (b"chr1\t100\t.\tA\tG\t.\tPASS\tX=\xff\tGT\t0|1\t0|0\n", "UTF-8"),
    ],
)
def test_bad_genotype_rejected_with_line_and_nothing_loaded(db, tmp_path, record, reason):
    add_dataset(db, "gt")
    good = b"chr1\t90\t.\tA\tG\t.\tPASS\t.\tGT\t0|1\t1|1\n"
    path = _bad_vcf(tmp_path, good * 3 + record)
    with pytest.raises(LoadError) as err:
        load_vcf(db, path, "gt", progress=False, batch_size=1)
    assert err.value.where == "line 9" and reason in err.value.reason
    assert str(path) in str(err.value)
    with db.session() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(BeaconVariant)).scalar() == 0
        assert s.execute(sa.select(sa.func.count()).select_from(BeaconLoad)).scalar() == 0


@pytest.mark.parametrize("gt", ["0/1", "1|1", "./1", "1/.", "./.", "0/0", "1/2", "2|2", "0|2"])
def test_single_sample_genotypes_count_as_in_a_multi_sample_file(db, tmp_path, gt):
    """add-genome's own genotype counter (one sample) gives what the
    multi-sample counters give for the same genotype."""
    head = (
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=248956422>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t"
    )
    carrier = "chr1\t100\t.\tA\tG,T\t.\tPASS\t.\tGT:DP\t1/2:5"  # so that both alleles are records
    one = tmp_path / "one.vcf"
    one.write_text(head + "S1\n" + f"chr1\t100\t.\tA\tG,T\t.\tPASS\t.\tGT:DP\t{gt}:7\n")
    two = tmp_path / "two.vcf"
    two.write_text(head + "S1\tS2\n" + f"chr1\t100\t.\tA\tG,T\t.\tPASS\t.\tGT:DP\t{gt}:7\t0/0:3\n")
    other = tmp_path / "other.vcf"
    other.write_text(head + "S0\n" + carrier + "\n")
    results = {}
    for name, path, single in (("solo", one, True), ("pair", two, False)):
        add_dataset(db, name)
        load_vcf(db, other, name, progress=False, single=True, assembly="GRCh38")
        load_vcf(db, path, name, progress=False, single=single, assembly="GRCh38")
        with db.session() as s:
            results[name] = {
                r.alt: (
                    r.ac,
                    r.hom,
                    r.het,
                    BitMap.deserialize(r.carriers),
                    BitMap.deserialize(r.hom_carriers),
                    r.an_gap,
                )
                for r in visible_alleles(s, name)
            }
    assert results["solo"] == results["pair"]
    assert set(results["solo"]) == {"G", "T"}


def _staged_rows(db, load_id: int) -> list[tuple]:
    """A load's rows as stored, every column but its own ids (pk within the load)."""
    columns = [c for c in VARIANT_COLUMNS if c not in ("load_id", "dataset_id")]
    with db.session() as s:
        rows = s.execute(
            sa.select(*(BeaconVariant.__table__.c[c] for c in columns))
            .where(BeaconVariant.load_id == load_id)
            .order_by(BeaconVariant.pk)
        ).all()
    return [(r[0] - (load_id << PK_LOAD_SHIFT), *r[1:]) for r in rows]


def test_single_sample_counter_stores_the_rows_of_the_general_counter(db, tmp_path, monkeypatch):
    """add-genome's genotype counter (cached per distinct genotype, carriers
    serialized once per file) stores byte for byte the rows the general text
    counter stores for the same single-sample file: every layout, multi-allelic
    sites, haploid and missing calls, FORMAT subfields, SNPs and insertions."""
    path = tmp_path / "one.vcf"
    lines = write_vcf(path, ["S1"], 400, seed=7)
    extra = [
        "chr1\t9000\trs1\tAC\tA\t.\tPASS\t.\tGT\t0/1",
        "chr1\t9010\t.\tA\t<DEL>\t.\tPASS\tSVTYPE=DEL;END=9100\tGT\t1/1",
        "chr1\t9200\t.\tA\ta\t.\tPASS\t.\tGT\t1|0",
        "chr1\t9300\t.\tC\tA,*\t.\tPASS\t.\tGT\t1/2",
    ]
    path.write_text(path.read_text() + "\n".join(extra) + "\n")
    other = tmp_path / "other.vcf"
    other.write_text(HEADER + "S0\nchr1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\n")
    rows = {}
    for name in ("fast", "general"):
        if name == "general":  # every genotype the general way
            monkeypatch.setattr(_SingleTemplate, "counts", lambda self, *a: None)
        add_dataset(db, name)
        # a genome first, so that this one's rows stay its own (a pending delta)
        load_vcf(db, other, name, progress=False, single=True, assembly="GRCh38")
        result = load_vcf(db, path, name, progress=False, single=True, batch_size=97)
        rows[name] = _staged_rows(db, result.load_id)
    assert len(rows["fast"]) >= len(lines)
    assert rows["fast"] == rows["general"]
