"""Genomes reported one at a time (``add-genome``) and withdrawn (``withdraw``):
the 1000 Genomes test VCF split into single-sample VCFs with bcftools, added
one at a time in shuffled order, in batches and in multi-sample groups, gives
the same records, carriers and frequencyInPopulations as one joint
``load-vcf`` of the same samples, and the counts pysam reads from the joint
file. Withdrawal leaves the store equal to one that never had the genome; a
repeated add changes nothing, an interrupted one is invisible and resumes, a
changed genome is refused unless replaced.

Every test runs with the genomes left as pending deltas, folded after every
add, and folded now and then (a mix of folded and pending genomes), so the
equivalences hold for queries over deltas, negative deltas and folded
records alike."""

from __future__ import annotations

import gzip
import json
import random
import subprocess

import pysam
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from pyroaring import BitMap

from server.beacon import engine
from server.beacon.frequencies import frequencies
from server.beacon.metadata import load_metadata
from server.beacon.store import allele_number, fold, genome_count, withdraw
from server.beacon.tables import (
    BeaconGenome,
    BeaconLoad,
    BeaconRecord,
    BeaconSample,
    BeaconVariant,
)
from server.beacon.vcf import load_vcf
from server.cli import main
from server.db.tables import AuditEvent
from server.errors import InvalidInput
from tests.unit.beacon.conftest import add_dataset, sample_names

N_SAMPLES = 24
# how loads fold their deltas in the test running (``fold_after`` of load_vcf)
FOLDING = {"pending": None, "mixed": 2, "folded": 0}
_mode: dict = {}


@pytest.fixture(autouse=True, params=sorted(FOLDING))
def folding(request, monkeypatch):
    monkeypatch.setitem(_mode, "name", request.param)
    monkeypatch.setitem(_mode, "fold_after", FOLDING[request.param])
    return request.param


def load(db, path, dataset_id, **kw):
    """``load_vcf`` folding as the running test's mode says."""
    return load_vcf(db, path, dataset_id, progress=False, fold_after=_mode["fold_after"], **kw)


def settle(db, dataset_id) -> None:
    """In the folded mode, fold what a withdrawal left pending."""
    if _mode["name"] == "folded":
        fold(db, dataset_id)


SEXES = [("NCIT:C16576", "female"), ("NCIT:C20197", "male")]
POPS = [("NCIT:C42331", "African"), ("NCIT:C41261", "White"), ("NCIT:C41260", "Asian")]


def _bcftools(*args) -> None:
    subprocess.run(["bcftools", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def split(tmp_path_factory, testdata):
    """The joint VCF of a random subset of samples, each sample's own VCF (no
    reference calls), multi-sample groups, and individuals with sex and population."""
    source = testdata / "variants" / "test_1000G_hg38.vcf.gz"
    out = tmp_path_factory.mktemp("split")
    everyone = list(pysam.VariantFile(str(source)).header.samples)
    rng = random.Random(13)
    samples = rng.sample(everyone, N_SAMPLES)
    joint = out / "joint.vcf.gz"
    _bcftools("view", "-s", ",".join(samples), "-Oz", "-o", str(joint), str(source))
    singles = {}
    for name in samples:
        path = out / f"{name}.vcf.gz"
        # -c1: only the records where this genome carries an ALT allele
        _bcftools("view", "-s", name, "-c1", "-Oz", "-o", str(path), str(source))
        singles[name] = path
    groups = []
    order = samples[:]
    rng.shuffle(order)
    for k, group in enumerate((order[:7], order[7:8], order[8:18])):
        path = out / f"group{k}.vcf.gz"
        _bcftools("view", "-s", ",".join(group), "-Oz", "-o", str(path), str(source))
        groups.append((group, path))
    rest = order[18:]
    individuals = []
    for i, name in enumerate(samples):
        sex, pop = SEXES[i % 2], POPS[i % 3]
        individuals.append(
            {
                "id": name,
                "sex": {"id": sex[0], "label": sex[1]},
                "ethnicity": {"id": pop[0], "label": pop[1]},
            }
        )
    meta = out / "individuals.json"
    meta.write_text(json.dumps(individuals))
    return {
        "samples": samples,
        "joint": joint,
        "singles": singles,
        "groups": groups,
        "rest": rest,
        "individuals": meta,
        "dir": out,
    }


def pysam_counts(path) -> dict:
    """(chrom, start, ref, alt) -> (AC, AN, hom, het, carriers, homozygous carriers),
    read genotype by genotype with pysam; alleles nobody carries are left out."""
    out = {}
    for rec in pysam.VariantFile(str(path)):
        an = sum(1 for smp in rec.samples.values() for a in smp["GT"] if a is not None)
        for k, alt in enumerate(rec.alts, start=1):
            carriers = {n for n, smp in rec.samples.items() if k in smp["GT"]}
            homs = {n for n, smp in rec.samples.items() if smp["GT"] == (k, k)}
            ac = sum(smp["GT"].count(k) for smp in rec.samples.values())
            if ac:
                out[(rec.chrom.removeprefix("chr"), rec.start, rec.ref, alt)] = (
                    ac,
                    an,
                    len(homs),
                    len(carriers) - len(homs),
                    carriers,
                    homs,
                )
    return out


def snapshot(db, dataset_id: str) -> dict:
    """Everything a query can learn about the dataset's variants: per allele the
    counts, allele number, carriers and homozygous carriers by name, and the
    frequencyInPopulations entries, read as queries read them (the store's
    records with its pending deltas, aggregated per allele). The count and
    carrier query paths must agree with it."""
    with db.session() as s:
        names = sample_names(s, dataset_id)
        n = genome_count(s, dataset_id)
        ctx = engine.new_context(s)
        loads = ctx.vcf_loads([dataset_id])[dataset_id]
        out = {}
        carried = BitMap()
        for r in engine.alleles(ctx, loads, []):
            freqs = frequencies(ctx, dataset_id, r, lambda c: c)
            freqs[0] = {**freqs[0], "population": "dataset"}
            key = (r.chrom, r.start, r.ref, r.alt)
            assert key not in out, f"two records for {key}"
            carriers = BitMap.deserialize(r.carriers)
            carried |= carriers
            out[key] = (
                r.ac,
                allele_number(r, n),
                r.hom,
                r.het,
                {names[i] for i in carriers},
                {names[i] for i in BitMap.deserialize(r.hom_carriers)},
                json.dumps(freqs, sort_keys=True),
            )
        # the count and carrier statements of the query paths
        everything = engine.Genomic()
        assert engine._variant_count(ctx, loads, everything) == len(out)
        some = max((v[2] + v[3] for v in out.values()), default=0)
        assert engine._variant_count(ctx, loads, everything, some) == sum(
            1 for v in out.values() if v[2] + v[3] >= some
        )
        union = BitMap()
        for c in engine._carriers(ctx, loads, everything):
            union |= BitMap.deserialize(c)
        assert union == carried
        return out


def counts_only(snap: dict) -> dict:
    return {k: v[:6] for k, v in snap.items()}


def metadata(db, dataset_id, split) -> None:
    load_metadata(db, [split["individuals"]], dataset_id, progress=False)


def add_singles(db, dataset_id, paths, **kw) -> list:
    return [load(db, p, dataset_id, single=True, **kw) for p in paths]


def test_any_order_or_grouping_equals_joint_load_and_pysam(db, split, tmp_path):
    expected = pysam_counts(split["joint"])
    assert len(expected) > 500
    add_dataset(db, "joint")
    metadata(db, "joint", split)
    load(db, split["joint"], "joint")
    joint = snapshot(db, "joint")
    assert counts_only(joint) == expected

    # one at a time, shuffled
    add_dataset(db, "single")
    metadata(db, "single", split)
    order = split["samples"][:]
    random.Random(7).shuffle(order)
    results = add_singles(db, "single", [split["singles"][n] for n in order])
    assert {r.status for r in results} == {"loaded"}
    assert snapshot(db, "single") == joint

    # in batches through the CLI, mixed with multi-sample groups, metadata last
    add_dataset(db, "batch")
    env = {"GENOMEPORT_DATABASE_URL": str(db.url), "GENOMEPORT_VAR_DIR": str(tmp_path / "var")}
    runner = CliRunner()
    for _group, path in reversed(split["groups"]):
        load(db, path, "batch")
    rest = [str(split["singles"][n]) for n in split["rest"]]
    for batch in (rest[:4], rest[4:]):
        result = runner.invoke(
            main,
            ["beacon", "add-genome", *batch, "--dataset", "batch", "--quiet"],
            env=env,
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        assert result.output.count("loaded") == len(batch)
    metadata(db, "batch", split)
    assert snapshot(db, "batch") == joint
    # per-population entries are there (every genome is diploid and called)
    some = next(v for v in joint.values() if v[0] > 3)
    labels = {f["population"] for f in json.loads(some[6])}
    assert {"female", "male", "African", "White", "Asian"} <= labels


def test_withdrawal_equals_a_store_that_never_had_the_genome(db, split, testdata):
    samples = split["samples"]
    gone = samples[5]
    add_dataset(db, "had")
    metadata(db, "had", split)
    add_singles(db, "had", [split["singles"][n] for n in samples])
    with db.session() as s:
        before = s.execute(
            sa.select(sa.func.count())
            .select_from(BeaconVariant)
            .where(BeaconVariant.dataset_id == "had")
        ).scalar_one()
    result = withdraw(db, "had", gone, caller="test")
    assert result.records > 0 and result.metadata == 1
    settle(db, "had")

    add_dataset(db, "never")
    never_meta = split["dir"] / "never" / "individuals.json"
    never_meta.parent.mkdir(exist_ok=True)
    docs = [d for d in json.loads(split["individuals"].read_text()) if d["id"] != gone]
    never_meta.write_text(json.dumps(docs))
    load_metadata(db, [never_meta], "never", progress=False)
    others = [n for n in samples if n != gone]
    random.Random(3).shuffle(others)
    add_singles(db, "never", [split["singles"][n] for n in others])

    had, never = snapshot(db, "had"), snapshot(db, "never")
    assert had == never
    # the alleles only the withdrawn genome carried are gone
    private = {k for k, v in pysam_counts(split["joint"]).items() if v[4] == {gone}}
    assert private and not (private & had.keys())
    assert len(had) < before
    with db.session() as s:
        for table in (BeaconSample, BeaconGenome):
            assert (
                s.execute(
                    sa.select(table.name).where(table.dataset_id == "had", table.name == gone)
                ).first()
                is None
            )
        assert (
            s.execute(
                sa.select(BeaconRecord.id).where(
                    BeaconRecord.dataset_id == "had", BeaconRecord.id == gone
                )
            ).first()
            is None
        )
        assert not any(
            gone in p
            for p in s.execute(
                sa.select(BeaconLoad.path).where(BeaconLoad.dataset_id == "had")
            ).scalars()
        )
        audit = s.execute(sa.select(AuditEvent).where(AuditEvent.action == "withdraw")).scalar_one()
        assert (audit.api, audit.dataset_id, audit.object_id) == ("beacon", "had", gone)
        assert audit.outcome == "granted"
    # withdrawn again: nothing to withdraw
    with pytest.raises(Exception, match="has no genome"):
        withdraw(db, "had", gone)
    # and the genome can be reported again later (new consent): as if never withdrawn
    add_singles(db, "never", [split["singles"][gone]])
    add_singles(db, "had", [split["singles"][gone]])
    assert counts_only(snapshot(db, "had")) == counts_only(snapshot(db, "never"))


def test_withdraw_command_needs_yes(db, split, tmp_path):
    add_dataset(db, "cli")
    name = split["samples"][0]
    add_singles(db, "cli", [split["singles"][name]])
    env = {"GENOMEPORT_DATABASE_URL": str(db.url), "GENOMEPORT_VAR_DIR": str(tmp_path / "var")}
    runner = CliRunner()
    refused = runner.invoke(main, ["beacon", "withdraw", name, "--dataset", "cli"], env=env)
    assert refused.exit_code != 0 and "--yes" in refused.output
    assert genome_count_of(db, "cli") == 1
    done = runner.invoke(main, ["beacon", "withdraw", name, "--dataset", "cli", "--yes"], env=env)
    assert done.exit_code == 0, done.output
    assert genome_count_of(db, "cli") == 0 and snapshot(db, "cli") == {}


def test_fold_command(db, split, tmp_path, folding):
    if folding != "pending":
        pytest.skip("one run")
    add_dataset(db, "cf")
    names = split["samples"][:3]
    add_singles(db, "cf", [split["singles"][n] for n in names])
    before = snapshot(db, "cf")
    assert pending(db, "cf") == 2  # the first went straight into the empty store
    env = {"GENOMEPORT_DATABASE_URL": str(db.url), "GENOMEPORT_VAR_DIR": str(tmp_path / "var")}
    runner = CliRunner()
    done = runner.invoke(main, ["beacon", "fold", "--dataset", "cf", "--quiet"], env=env)
    assert done.exit_code == 0, done.output
    assert "folded 2 deltas" in done.output
    assert pending(db, "cf") == 0 and snapshot(db, "cf") == before
    again = runner.invoke(main, ["beacon", "fold", "--dataset", "cf", "--quiet"], env=env)
    assert again.exit_code == 0 and "nothing to fold" in again.output


def genome_count_of(db, dataset_id) -> int:
    with db.session() as s:
        return genome_count(s, dataset_id)


def test_repeated_add_changes_nothing(db, split, tmp_path):
    add_dataset(db, "rep")
    names = split["samples"][:3]
    first = add_singles(db, "rep", [split["singles"][n] for n in names])
    snap = snapshot(db, "rep")
    again = add_singles(db, "rep", [split["singles"][names[0]]])
    assert again[0].status == "unchanged" and again[0].load_id == first[0].load_id
    # the same genome in another file (plain text, not bgzipped): the same calls
    plain = tmp_path / f"{names[1]}.vcf"
    with gzip.open(split["singles"][names[1]], "rt") as fh:
        plain.write_text(fh.read())
    other = add_singles(db, "rep", [plain])
    assert other[0].status == "unchanged"
    # and inside a multi-sample file with a new genome: only the new one is added
    group = split["dir"] / "pair.vcf.gz"
    _bcftools(
        "view",
        "-s",
        f"{names[2]},{split['samples'][3]}",
        "-Oz",
        "-o",
        str(group),
        str(split["joint"]),
    )
    load(db, group, "rep")
    add_dataset(db, "rep2")
    add_singles(db, "rep2", [split["singles"][n] for n in split["samples"][:4]])
    assert snapshot(db, "rep") == snapshot(db, "rep2") != snap
    with db.session() as s:
        assert genome_count(s, "rep") == 4


def test_interrupted_add_is_invisible_then_resumes(db, split):
    add_dataset(db, "cut")
    names = split["samples"][:2]
    add_singles(db, "cut", [split["singles"][names[0]]])
    before = snapshot(db, "cut")
    part = load_vcf(
        db,
        split["singles"][names[1]],
        "cut",
        progress=False,
        single=True,
        batch_size=50,
        stop_after=100,
    )
    assert part.status == "interrupted"
    assert snapshot(db, "cut") == before
    with db.session() as s:
        assert genome_count(s, "cut") == 1
        assert s.get(BeaconLoad, part.load_id).checkpoint >= 100
    done = add_singles(db, "cut", [split["singles"][names[1]]], batch_size=50)
    assert done[0].status == "resumed" and done[0].load_id == part.load_id
    add_dataset(db, "whole")
    add_singles(db, "whole", [split["singles"][n] for n in names])
    assert snapshot(db, "cut") == snapshot(db, "whole")


def test_changed_genome_refused_unless_replaced(db, split, tmp_path):
    names = split["samples"][:3]
    target = names[1]
    changed = tmp_path / f"{target}.changed.vcf"
    with gzip.open(split["singles"][target], "rt") as fh:
        lines = fh.read().splitlines()
    body = [i for i, line in enumerate(lines) if not line.startswith("#")]
    # drop a third of its records and make one heterozygous call homozygous
    kept = [line for i, line in enumerate(lines) if i not in body[::3]]
    for i, line in enumerate(kept):
        if not line.startswith("#") and line.endswith(("0|1", "1|0")):
            kept[i] = line[:-3] + "1|1"
            break
    changed.write_text("\n".join(kept) + "\n")

    add_dataset(db, "chg")
    add_singles(db, "chg", [split["singles"][n] for n in names])
    snap = snapshot(db, "chg")
    with pytest.raises(InvalidInput, match="already in dataset chg with other calls"):
        add_singles(db, "chg", [changed])
    assert snapshot(db, "chg") == snap
    replaced = add_singles(db, "chg", [changed], replace=True)
    assert replaced[0].replaced == [target]
    # the first file again is a change now, not a repeat
    with pytest.raises(InvalidInput, match="with other calls"):
        add_singles(db, "chg", [split["singles"][target]])

    add_dataset(db, "fresh")
    add_singles(db, "fresh", [split["singles"][names[0]], changed, split["singles"][names[2]]])
    assert snapshot(db, "chg") == snapshot(db, "fresh") != snap


def test_add_genome_takes_single_sample_files_only(db, split):
    add_dataset(db, "one")
    with pytest.raises(InvalidInput, match="single-sample files"):
        load_vcf(db, split["joint"], "one", progress=False, single=True)
    assert snapshot(db, "one") == {}


def test_gvcf_reference_blocks_are_not_records(db, tmp_path):
    """A gVCF: reference blocks (<NON_REF>) are reference calls, not records; its
    variant calls count like a VCF's, with the <NON_REF> allele dropped."""
    head = (
        "##fileformat=VCFv4.2\n##reference=GRCh38\n##contig=<ID=chr22,length=50818468>\n"
        '##ALT=<ID=NON_REF,Description="Any other allele">\n'
        '##INFO=<ID=END,Number=1,Type=Integer,Description="End of the block">\n'
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{name}\n"
    )
    gvcf = tmp_path / "G1.g.vcf"
    gvcf.write_text(
        head.format(name="G1")
        + "chr22\t1000\t.\tA\t<NON_REF>\t.\tPASS\tEND=1999\tGT\t0/0\n"
        + "chr22\t2000\t.\tC\tT,<NON_REF>\t50\tPASS\t.\tGT\t0/1\n"
        + "chr22\t2001\t.\tG\t<NON_REF>\t.\tPASS\tEND=3000\tGT\t0/0\n"
        + "chr22\t3001\t.\tA\tG,<NON_REF>\t50\tPASS\t.\tGT\t1/1\n"
    )
    plain = tmp_path / "G2.vcf"
    plain.write_text(head.format(name="G2") + "chr22\t2000\t.\tC\tT\t50\tPASS\t.\tGT\t1|1\n")
    add_dataset(db, "gv")
    add_singles(db, "gv", [gvcf, plain])
    snap = snapshot(db, "gv")
    assert set(snap) == {("22", 1999, "C", "T"), ("22", 3000, "A", "G")}
    assert snap[("22", 1999, "C", "T")][:6] == (3, 4, 1, 1, {"G1", "G2"}, {"G2"})
    assert snap[("22", 3000, "A", "G")][:6] == (2, 4, 1, 0, {"G1"}, {"G1"})


def base_records(db, dataset_id: str) -> dict:
    """The dataset's base records alone (the store row's rows, deltas ignored):
    what a query that forgot the deltas would read."""
    with db.session() as s:
        names = sample_names(s, dataset_id)
        rows = s.execute(
            sa.select(BeaconVariant)
            .join(BeaconLoad, BeaconLoad.id == BeaconVariant.load_id)
            .where(BeaconVariant.dataset_id == dataset_id, BeaconLoad.kind == "vcf")
        ).scalars()
        return {
            (r.chrom, r.start, r.ref, r.alt): (
                r.ac,
                r.hom,
                r.het,
                r.an_gap,
                {names.get(i, i) for i in BitMap.deserialize(r.carriers)},
                {names.get(i, i) for i in BitMap.deserialize(r.hom_carriers)},
            )
            for r in rows
        }


def pending(db, dataset_id: str) -> int:
    with db.session() as s:
        return s.execute(
            sa.select(sa.func.count())
            .select_from(BeaconLoad)
            .where(BeaconLoad.dataset_id == dataset_id, BeaconLoad.pending.is_(True))
        ).scalar_one()


def test_fold_equals_a_joint_store_and_queries_read_every_delta(db, split, folding):
    if folding != "pending":
        pytest.skip("one run: the test chooses when to fold")
    samples = split["samples"]
    add_dataset(db, "jt")
    metadata(db, "jt", split)
    load(db, split["joint"], "jt")
    fold(db, "jt")
    joint, joint_base = snapshot(db, "jt"), base_records(db, "jt")

    add_dataset(db, "mix")
    metadata(db, "mix", split)
    first, second = samples[:12], samples[12:]
    add_singles(db, "mix", [split["singles"][n] for n in first])
    # the first genome went straight into the empty store, the others are deltas
    assert pending(db, "mix") == 11
    assert {n for v in base_records(db, "mix").values() for n in v[4]} == {first[0]}
    assert len(snapshot(db, "mix")) > 100
    result = fold(db, "mix", chunk=100)
    assert result.deltas == 11 and result.rows > 0 and pending(db, "mix") == 0
    add_singles(db, "mix", [split["singles"][n] for n in second])
    # some folded, some pending: queries add the deltas to the records
    assert base_records(db, "mix") != joint_base
    assert snapshot(db, "mix") == joint
    # withdraw one folded and one pending genome: a negative delta and a deletion
    with db.session() as s:
        idx = s.execute(
            sa.select(BeaconSample.idx).where(
                BeaconSample.dataset_id == "mix", BeaconSample.name == first[0]
            )
        ).scalar_one()
    withdraw(db, "mix", first[0], caller="test")
    withdraw(db, "mix", second[0], caller="test")
    gone = {first[0], second[0]}
    # the folded genome is still in the base records (by index) until the fold ...
    assert any(idx in v[4] for v in base_records(db, "mix").values())
    # ... but no query counts it
    mid = snapshot(db, "mix")
    assert not any(gone & v[4] for v in mid.values())
    # an interrupted fold: every committed chunk answers the same; it resumes
    part = fold(db, "mix", chunk=50, stop_after=2)
    assert part.rows > 0 and pending(db, "mix") > 0
    assert snapshot(db, "mix") == mid
    done = fold(db, "mix", chunk=50)
    assert done.rows > 0 and pending(db, "mix") == 0
    assert snapshot(db, "mix") == mid
    assert not any(idx in v[4] for v in base_records(db, "mix").values())

    add_dataset(db, "without")
    docs = [d for d in json.loads(split["individuals"].read_text()) if d["id"] not in gone]
    meta = split["dir"] / "without" / "individuals.json"
    meta.parent.mkdir(exist_ok=True)
    meta.write_text(json.dumps(docs))
    load_metadata(db, [meta], "without", progress=False)
    others = [n for n in samples if n not in gone]
    add_singles(db, "without", [split["singles"][n] for n in others])
    fold(db, "without")
    assert snapshot(db, "mix") == snapshot(db, "without")
    assert base_records(db, "mix") == base_records(db, "without")
    # a store folded from single genomes equals the store of the joint file
    fold(db, "mix")
    add_singles(db, "mix", [split["singles"][n] for n in sorted(gone)])
    fold(db, "mix")
    assert base_records(db, "mix") == joint_base


def test_concurrent_first_loads_into_one_dataset(db, split, folding):
    """Two first loads into a new dataset at once (the store row created by
    both): both succeed, with the two genomes counted."""
    if folding != "pending" or db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (SQLite serialises writers), one run")
    import threading

    add_dataset(db, "race")
    names = split["samples"][:2]
    errors, results = [], []
    barrier = threading.Barrier(2)

    def add(name):
        try:
            barrier.wait()
            results.append(load(db, split["singles"][name], "race", single=True))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert {r.status for r in results} == {"loaded"}
    add_dataset(db, "calm")
    add_singles(db, "calm", [split["singles"][n] for n in names])
    assert snapshot(db, "race") == snapshot(db, "calm")
    with db.session() as s:
        stores = s.execute(
            sa.select(sa.func.count())
            .select_from(BeaconLoad)
            .where(BeaconLoad.dataset_id == "race", BeaconLoad.kind == "vcf")
        ).scalar_one()
    assert stores == 1
