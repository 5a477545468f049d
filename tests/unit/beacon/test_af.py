"""Frequency-only datasets: which INFO fields are read, and what the counts say."""

from __future__ import annotations

import pysam
import pytest

from server.beacon import af
from server.beacon.af import load_frequencies
from server.beacon.vcf import load_vcf
from server.errors import InvalidInput
from server.registry import add_dataset

HEADER = """##fileformat=VCFv4.2
##contig=<ID=chr1,length=1000>
##INFO=<ID=AC,Number=A,Type=Integer,Description="x">
##INFO=<ID=AN,Number=1,Type=Integer,Description="x">
##INFO=<ID=AC_DK,Number=A,Type=Integer,Description="x">
##INFO=<ID=AN_DK,Number=1,Type=Integer,Description="x">
##INFO=<ID=AC_Hom_DK,Number=A,Type=Integer,Description="x">
##INFO=<ID=AC_Het_DK,Number=A,Type=Integer,Description="x">
##INFO=<ID=AN_DK_F,Number=1,Type=Integer,Description="x">
##INFO=<ID=AF_DK_F,Number=A,Type=Float,Description="x">
##INFO=<ID=DP,Number=1,Type=Integer,Description="x">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO
"""


def test_detect_groups_fields_by_population(tmp_path):
    (tmp_path / "h.vcf").write_text(HEADER)
    header = pysam.VariantFile(str(tmp_path / "h.vcf")).header
    assert af.detect(header, "ds") == {
        "ds": {"AC": "AC", "AN": "AN"},
        "DK": {"AC": "AC_DK", "AN": "AN_DK", "AC_Hom": "AC_Hom_DK", "AC_Het": "AC_Het_DK"},
        "DK_F": {"AN": "AN_DK_F", "AF": "AF_DK_F"},
    }


def test_counts_of_reads_hom_as_people_and_af_when_no_ac():
    info = {"AC_DK": (7, 3), "AN_DK": 40, "AC_Hom_DK": (4, 0), "AC_Het_DK": (3, 3)}
    fields = {"AC": "AC_DK", "AN": "AN_DK", "AC_Hom": "AC_Hom_DK", "AC_Het": "AC_Het_DK"}
    assert af.counts_of(info, fields, 0) == [7, 40, 2, 3, None]  # 4 hom alleles: 2 people
    assert af.counts_of({"AN_F": 20, "AF_F": (0.25,)}, {"AN": "AN_F", "AF": "AF_F"}, 0) == [
        5,
        20,
        None,
        None,
        None,
    ]
    assert af.counts_of({}, fields, 0) is None  # no call in this population


def test_carriers_are_the_fewest_people_the_counts_need():
    assert af.carriers({"ds": [7, 40, 2, 3, None]}, "ds") == 5
    assert af.carriers({"ds": [7, 40, None, None, None]}, "ds") == 4  # ceil(7 / 2)


def test_a_dataset_with_genotypes_is_refused(db, tmp_path, seed_dir):
    add_dataset(db, "g", access="public", assembly="GPDEMO1")
    load_vcf(db, seed_dir / "cohort.vcf.gz", "g", progress=False)
    (tmp_path / "f.vcf").write_text(HEADER + "chr1\t5\t.\tA\tG\t.\t.\tAC=1;AN=10\n")
    with pytest.raises(InvalidInput, match="holds genotypes"):
        load_frequencies(db, tmp_path / "f.vcf", "g", progress=False)


def test_ac_above_an_is_refused_and_nothing_loaded(db, tmp_path):
    import sqlalchemy as sa

    from server.beacon.tables import BeaconFrequency, BeaconLoad

    add_dataset(db, "f", access="public", assembly="GRCh38")
    (tmp_path / "f.vcf").write_text(
        HEADER + "chr1\t5\t.\tA\tG\t.\t.\tAC=1;AN=10\nchr1\t9\t.\tC\tT\t.\t.\tAC=11;AN=10\n"
    )
    with pytest.raises(InvalidInput, match=r"record 2 \(chr1:9\).*AC 11 is not within AN 10"):
        load_frequencies(db, tmp_path / "f.vcf", "f", progress=False)
    with db.session() as s:
        assert not s.scalar(sa.select(sa.func.count()).select_from(BeaconFrequency))
        assert not s.scalar(
            sa.select(sa.func.count()).select_from(BeaconLoad).where(BeaconLoad.dataset_id == "f")
        )
