"""Loading VCF/BCF, metadata, genes and ontologies: counts checked against
bcftools/pysam, idempotence, resume, all-or-nothing rejection, CPR refusal."""

from __future__ import annotations

import gzip
import json
import subprocess

import pysam
import pytest
import sqlalchemy as sa
from pyroaring import BitMap

from server.beacon.genes import load_genes
from server.beacon.journal import LoadError
from server.beacon.metadata import duration_days, load_metadata
from server.beacon.ontology import load_ontology, parse_obo
from server.beacon.store import allele_number, genome_count
from server.beacon.tables import (
    BeaconAnnotation,
    BeaconGene,
    BeaconLoad,
    BeaconOntologyClosure,
    BeaconRecord,
    BeaconRecordTerm,
    BeaconSample,
    BeaconVariant,
)
from server.beacon.vcf import _Writer, aa_short, classify, hgvs_genomic, load_vcf
from tests.support.data import HPO_ROOT
from tests.unit.beacon.conftest import add_dataset


def bcftools_counts(path) -> dict:
    """(chrom, pos, ref, alt) -> (AC, AN, hom samples, het samples) from bcftools."""
    tagged = subprocess.run(
        ["bcftools", "+fill-tags", str(path), "--", "-t", "AC,AN,AC_Hom,AC_Het"],
        check=True,
        capture_output=True,
    ).stdout
    out = subprocess.run(
        ["bcftools", "query", "-f", "%CHROM\t%POS\t%REF\t%ALT\t%AC\t%AN\t%AC_Hom\t%AC_Het\n", "-"],
        input=tagged,
        check=True,
        capture_output=True,
    ).stdout.decode()
    counts = {}
    for line in out.splitlines():
        chrom, pos, ref, alts, ac, an, achom, achet = line.split("\t")
        for i, alt in enumerate(alts.split(",")):
            counts[(chrom.removeprefix("chr"), int(pos), ref, alt)] = (
                int(ac.split(",")[i]),
                int(an),
                int(achom.split(",")[i]) // 2,
                int(achet.split(",")[i]),
            )
    return counts


def stored(db, dataset_id="ds1") -> dict:
    """(chrom, pos, ref, alt) -> record, with ``an`` set to its allele number."""
    with db.session() as s:
        n = genome_count(s, dataset_id)
        rows = (
            s.execute(
                sa.select(BeaconVariant)
                .join(BeaconLoad, BeaconLoad.id == BeaconVariant.load_id)
                .where(BeaconLoad.status == "done", BeaconVariant.dataset_id == dataset_id)
            )
            .scalars()
            .all()
        )
        for r in rows:
            r.an = allele_number(r, n)
        return {(r.chrom, r.start + 1, r.ref, r.alt): r for r in rows}


def test_vcf_counts_equal_bcftools(db, dataset, testdata):
    path = testdata / "beacon" / "test_1000G_hg38.annotated.vcf.gz"
    result = load_vcf(db, path, dataset, progress=False)
    assert result.status == "loaded"
    # an ALT allele no sample carries is not a record (the merged store holds
    # alleles someone carries, whatever the grouping of the genomes)
    expected = {k: v for k, v in bcftools_counts(path).items() if v[0]}
    rows = stored(db)
    assert len(rows) == len(expected) == 2996
    for key, (ac, an, hom, het) in expected.items():
        r = rows[key]
        assert (r.ac, r.an, r.hom, r.het) == (ac, an, hom, het), key
        assert len(BitMap.deserialize(r.carriers)) == hom + het
        assert r.af == pytest.approx(ac / an)
    # carriers name the right samples (checked with pysam on a few records)
    with db.session() as s:
        names = dict(s.execute(sa.select(BeaconSample.idx, BeaconSample.name)).all())
    vf = pysam.VariantFile(str(path))
    for n, rec in enumerate(vf):
        if n % 300:
            continue
        want = {name for name, smp in rec.samples.items() if 1 in (smp["GT"] or ())}
        got = {
            names[i]
            for i in BitMap.deserialize(rows[("22", rec.pos, rec.ref, rec.alts[0])].carriers)
        }
        assert got == want
    with db.session() as s:
        genes = set(s.execute(sa.select(BeaconAnnotation.gene).distinct()).scalars())
    assert "" in genes and any(g for g in genes)


def test_multiallelic_and_structural_variants_split_and_counted(db, seed_dir):
    add_dataset(db, "demo", assembly="GPDEMO1")
    path = seed_dir / "cohort.vcf.gz"
    load_vcf(db, path, "demo", progress=False)
    expected = bcftools_counts(path)
    rows = stored(db, "demo")
    assert set(rows) == set(expected)
    for key, (ac, an, hom, het) in expected.items():
        assert (rows[key].ac, rows[key].an, rows[key].hom, rows[key].het) == (ac, an, hom, het)
    svs = [r for r in rows.values() if r.alt.startswith("<")]
    assert svs and {r.variant_type for r in svs} <= {"DEL", "DUP", "INV"}
    vf = pysam.VariantFile(str(path))
    for rec in vf:
        if rec.alts[0].startswith("<"):
            r = rows[(rec.chrom.removeprefix("chr"), rec.pos, rec.ref, rec.alts[0])]
            assert (r.start, r.end) == (rec.start, rec.stop)
            assert r.length == abs(rec.info["SVLEN"][0])


def test_bcf_and_vcf_give_the_same_store(db, testdata):
    add_dataset(db, "a")
    add_dataset(db, "b")
    load_vcf(db, testdata / "variants" / "test_1000G_hg38.vcf.gz", "a", progress=False)
    load_vcf(db, testdata / "variants" / "test_1000G_hg38.bcf", "b", progress=False)
    a, b = stored(db, "a"), stored(db, "b")
    assert a.keys() == b.keys()
    assert all((a[k].ac, a[k].an, a[k].carriers) == (b[k].ac, b[k].an, b[k].carriers) for k in a)


def test_reload_is_idempotent(db, dataset, seed_dir):
    add_dataset(db, "demo", assembly="GPDEMO1")
    first = load_vcf(db, seed_dir / "cohort.vcf.gz", "demo", progress=False)
    before = {k: (v.pk, v.ac) for k, v in stored(db, "demo").items()}
    again = load_vcf(db, seed_dir / "cohort.vcf.gz", "demo", progress=False)
    assert again.status == "unchanged" and again.load_id == first.load_id
    assert {k: (v.pk, v.ac) for k, v in stored(db, "demo").items()} == before


def test_interrupted_load_is_invisible_then_resumes(db, seed_dir):
    add_dataset(db, "demo", assembly="GPDEMO1")
    part = load_vcf(
        db, seed_dir / "cohort.vcf.gz", "demo", progress=False, batch_size=100, stop_after=200
    )
    assert part.status == "interrupted"
    assert stored(db, "demo") == {}
    with db.session() as s:
        assert s.get(BeaconLoad, part.load_id).checkpoint >= 200
    done = load_vcf(db, seed_dir / "cohort.vcf.gz", "demo", progress=False, batch_size=100)
    assert done.status == "resumed"
    with db.session() as s:
        # the interrupted load's rows were kept (resumed, not reloaded) and, the
        # dataset being empty, became its store as they were staged
        assert s.get(BeaconLoad, part.load_id).kind == "vcf"
        assert s.get(BeaconLoad, done.load_id).status == "done"
    assert len(stored(db, "demo")) == len(bcftools_counts(seed_dir / "cohort.vcf.gz"))


def _write_vcf(tmp_path, body: str, samples=("S1", "S2")) -> str:
    path = tmp_path / "bad.vcf"
    path.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=248956422>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(samples) + "\n" + body
    )
    return path


def test_bad_record_rejected_with_line_and_nothing_loaded(db, dataset, tmp_path):
    good = "chr1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0|1\t0|0\n"
    path = _write_vcf(tmp_path, good * 3 + "chr1\tx12\t.\tA\tG\t.\tPASS\t.\tGT\t0|1\t0|0\n")
    with pytest.raises(LoadError) as err:
        load_vcf(db, path, dataset, progress=False, batch_size=1)
    assert str(path) in str(err.value) and "line 8" in str(err.value) and "POS" in str(err.value)
    with db.session() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(BeaconVariant)).scalar() == 0
        assert s.execute(sa.select(sa.func.count()).select_from(BeaconLoad)).scalar() == 0


def test_bad_genotype_rejected(db, dataset, tmp_path):
    path = _write_vcf(tmp_path, "chr1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0|3\t0|0\n")
    with pytest.raises(LoadError, match="line 5"):
        load_vcf(db, path, dataset, progress=False)


def test_cpr_like_sample_names_refused(db, dataset, tmp_path):
    path = _write_vcf(
        tmp_path, "chr1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0|1\t0|0\n", samples=("S1", "010190-1234")
    )
    with pytest.raises(LoadError, match="CPR"):
        load_vcf(db, path, dataset, progress=False)
    path = _write_vcf(
        tmp_path, "chr1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0|1\t0|0\n", samples=("S1", "3112991234")
    )
    with pytest.raises(LoadError, match="CPR"):
        load_vcf(db, path, dataset, progress=False)
    with db.session() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(BeaconSample)).scalar() == 0


def test_classify_and_hgvs():
    assert classify("A", "G", {}, 99) == ("SNP", 1, 100)
    assert classify("AT", "A", {}, 99) == ("DEL", 1, 101)
    assert classify("A", "ATTT", {}, 99) == ("INS", 3, 100)
    assert classify("AC", "GT", {}, 99) == ("MNP", 2, 101)
    assert classify("ACG", "T", {}, 99) == ("INDEL", 3, 102)
    assert classify("N", "<DEL>", {"END": "1000", "SVTYPE": "DEL"}, 99) == ("DEL", 900, 1000)
    assert hgvs_genomic("17", "GRCh38", 43057063, "G", "A") == "NC_000017.11:g.43057063G>A"
    assert hgvs_genomic("22", "GRCh38", 100, "GA", "G") == "NC_000022.11:g.101del"
    assert hgvs_genomic("22", "GRCh37", 100, "G", "GTT") == "NC_000022.10:g.100_101insTT"
    assert aa_short("p.Val600Glu") == "V600E" and aa_short("ENSP1:p.(Arg12Ter)") == "R12*"


# ---------------------------------------------------------------- metadata
def test_bff_and_phenopackets_load(db, dataset, testdata):
    bff = sorted(
        p
        for p in (testdata / "beacon" / "bff").glob("*.json")
        if p.stem not in ("runs", "analyses")
    )
    pxf = sorted((testdata / "beacon" / "phenopackets").glob("*.json"))
    results = load_metadata(db, bff + pxf, dataset, progress=False)
    assert [r.status for r in results] == ["loaded"] * len(results)
    with db.session() as s:
        counts = dict(
            s.execute(
                sa.select(BeaconRecord.entry_type, sa.func.count()).group_by(
                    BeaconRecord.entry_type
                )
            ).all()
        )
        # negated phenotypes are not indexed
        p = s.get(BeaconRecord, (dataset, "individual", "P0007498"))
        terms = set(
            s.execute(
                sa.select(BeaconRecordTerm.term).where(BeaconRecordTerm.record_id == "P0007498")
            ).scalars()
        )
    expected = {}
    for f in bff:
        expected[f.stem[:-1] if f.stem != "analyses" else "analysis"] = len(
            json.loads(f.read_text())
        )
    assert counts["individual"] == expected["individual"] + len(pxf)
    assert counts["biosample"] == expected["biosample"] and counts["cohort"] == expected["cohort"]
    assert p.document["sex"]["id"] == "NCIT:C20197"
    assert "HP:0001252" in terms and "HP:0001249" not in terms
    again = load_metadata(db, bff, dataset, progress=False)
    assert {r.status for r in again} == {"unchanged"}


def test_metadata_bad_json_reports_line(db, dataset, tmp_path):
    path = tmp_path / "individuals.json"
    path.write_text('[\n {"id": "a", "sex": {"id": "NCIT:C20197"}},\n {"id": }\n]')
    with pytest.raises(LoadError, match=r"individuals.json: line 3"):
        load_metadata(db, [path], dataset, progress=False)


def test_metadata_missing_field_and_cpr_refused_nothing_loaded(db, dataset, tmp_path):
    path = tmp_path / "individuals.json"
    path.write_text(json.dumps([{"id": "a", "sex": {"id": "NCIT:C20197"}}, {"id": "b"}]))
    with pytest.raises(LoadError, match="record 2.*sex"):
        load_metadata(db, [path], dataset, progress=False)
    path.write_text(
        json.dumps(
            [
                {"id": "a", "sex": {"id": "NCIT:C20197"}},
                {"id": "b", "sex": {"id": "NCIT:C20197"}, "info": {"note": "patient 150385-1234"}},
            ]
        )
    )
    with pytest.raises(LoadError, match="record 2.*CPR"):
        load_metadata(db, [path], dataset, progress=False)
    with db.session() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(BeaconRecord)).scalar() == 0


def test_duration_days():
    assert duration_days("P1Y") == pytest.approx(365.25)
    assert duration_days("P40Y1M1D") == pytest.approx(40 * 365.25 + 30.4375 + 1)
    assert duration_days("male") is None and duration_days("P") is None


# ---------------------------------------------------------------- genes, ontology
def test_genes_load(db, testdata):
    result = load_genes(db, testdata / "annotations" / "hg38_genes.tsv.gz", progress=False)
    with gzip.open(testdata / "annotations" / "hg38_genes.tsv.gz", "rt") as fh:
        rows = [line.split("\t") for line in fh if not line.startswith("#")]
    assert result.items == len(rows)
    with db.session() as s:
        brca1 = s.execute(sa.select(BeaconGene).where(BeaconGene.symbol == "BRCA1")).scalar_one()
    assert (brca1.chrom, brca1.start, brca1.end) == ("17", 43044294, 43170245)
    assert (
        load_genes(db, testdata / "annotations" / "hg38_genes.tsv.gz", progress=False).status
        == "unchanged"
    )


MINI_OBO = (
    HPO_ROOT
    + """
[Term]
id: HP:0000707
name: Abnormality of the nervous system
is_a: HP:0000118 ! Phenotypic abnormality

[Term]
id: HP:0001250
name: Seizure
alt_id: HP:0002279
is_a: HP:0000707

[Term]
id: HP:0009999
name: Gone
is_obsolete: true
"""
)


def test_ontology_closure(db, tmp_path):
    path = tmp_path / "mini.obo"
    path.write_text(MINI_OBO)
    load_ontology(db, path, progress=False)
    with db.session() as s:
        desc = set(
            s.execute(
                sa.select(BeaconOntologyClosure.descendant).where(
                    BeaconOntologyClosure.ancestor == "HP:0000118"
                )
            ).scalars()
        )
    assert desc == {"HP:0000118", "HP:0000707", "HP:0001250", "HP:0002279"}
    assert load_ontology(db, path, progress=False).status == "unchanged"


def test_shipped_hpo_parses(testdata):
    labels, parents = parse_obo(testdata / "annotations" / "hp.obo.gz")
    assert labels["HP:0001250"] == "Seizure"
    assert "HP:0000118" in parents["HP:0000707"]


def test_bad_obo_rejected(db, tmp_path):
    path = tmp_path / "bad.obo"
    path.write_text("format-version: 1.2\n\n[Term]\nid: X:1\nthis line has no tag\n")
    with pytest.raises(LoadError, match="line 5"):
        load_ontology(db, path, progress=False)


def test_replaced_then_restored_file_loads_again(db, dataset, tmp_path):
    path = tmp_path / "individuals.json"
    first = [{"id": "a", "sex": {"id": "NCIT:C20197"}}]
    second = [{"id": "b", "sex": {"id": "NCIT:C16576"}}]
    ids = []
    for content in (first, second, first):
        path.write_text(json.dumps(content))
        (result,) = load_metadata(db, [path], dataset, progress=False)
        assert result.status == "loaded"
        ids.append(result.load_id)
        with db.session() as s:
            assert set(s.execute(sa.select(BeaconRecord.id)).scalars()) == {content[0]["id"]}
    assert ids == sorted(ids) and len(set(ids)) == 3


def test_vep_csq_annotations(db, dataset, tmp_path):
    fmt = "Allele|Consequence|IMPACT|SYMBOL|Gene|Feature_type|Feature|BIOTYPE|HGVSc|HGVSp"
    path = tmp_path / "vep.vcf"
    path.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=chr7,length=159345973>\n"
        f'##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from '
        f'Ensembl VEP. Format: {fmt}">\n'
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"
        "chr7\t140753336\t.\tA\tT,C\t.\tPASS\tCSQ=T|missense_variant|MODERATE|BRAF|ENSG1|"
        "Transcript|ENST00000646891.2|protein_coding|ENST00000646891.2:c.1799T>A|"
        "ENSP00000493543.1:p.Val600Glu,C|missense_variant|MODERATE|BRAF|ENSG1|Transcript|"
        "ENST00000646891.2|protein_coding|ENST00000646891.2:c.1799T>G|"
        "ENSP00000493543.1:p.Val600Gly\tGT\t1/2\n"
        "chr7\t140753340\t.\tGA\tG\t.\tPASS\tCSQ=-|frameshift_variant|HIGH|BRAF|ENSG1|"
        "Transcript|ENST00000646891.2|protein_coding|c.1795del|p.Leu599fs\tGT\t0/1\n"
    )
    load_vcf(db, path, dataset, progress=False)
    with db.session() as s:
        rows = s.execute(
            sa.select(BeaconVariant.alt, BeaconAnnotation.gene, BeaconAnnotation.aa_change).join(
                BeaconAnnotation, BeaconAnnotation.variant_pk == BeaconVariant.pk
            )
        ).all()
    assert sorted(rows) == [("C", "BRAF", "V600G"), ("G", "BRAF", "L599fs"), ("T", "BRAF", "V600E")]


@pytest.mark.parametrize("background", [True, False])
def test_batch_writer_commits_in_order_and_stops_at_the_first_error(background):
    """The loader's batch writer (a thread on PostgreSQL): batches are written
    one after the other in order, none after a failed one, and the failure
    reaches the loading thread."""
    written = []

    def write(n):
        if n == 2:
            raise RuntimeError("disk full")
        written.append(n)

    writer = _Writer(write, background=background)
    with pytest.raises(RuntimeError, match="disk full"):
        for n in range(6):
            writer.put(n)
        writer.finish()
    writer.close()
    assert written == [0, 1]
    ok = _Writer(written.append, background=background)
    for n in range(10, 15):
        ok.put(n)
    ok.finish()
    assert written == [0, 1, 10, 11, 12, 13, 14]
