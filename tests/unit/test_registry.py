import shutil

import pytest
import sqlalchemy as sa

from server import registry
from server.db.tables import DataFile
from server.errors import Conflict, InvalidInput, NotFound


@pytest.fixture
def bam(testdata, tmp_path):
    for name in ("htsnexus_test_NA12878.bam", "htsnexus_test_NA12878.bam.bai"):
        shutil.copy(testdata / "reads" / name, tmp_path / name)
    return tmp_path / "htsnexus_test_NA12878.bam"


def count_files(db) -> int:
    with db.session() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(DataFile))


def test_add_dataset_is_idempotent(db):
    assert registry.add_dataset(db, "ds1", access="public")[1] == "created"
    assert registry.add_dataset(db, "ds1", access="public")[1] == "unchanged"
    assert registry.add_dataset(db, "ds1", access="controlled")[1] == "updated"


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "x" * 200, "-lead"])
def test_bad_dataset_ids_are_refused(db, bad):
    with pytest.raises(InvalidInput):
        registry.add_dataset(db, bad, access="public")


def test_add_files_registers_checksums_and_is_idempotent(db, bam):
    import hashlib

    registry.add_dataset(db, "ds1", access="public")
    [first] = registry.add_files(db, [bam], "ds1", progress=False)
    assert (first.outcome, first.object_id, first.format) == (
        "created",
        "htsnexus_test_NA12878",
        "BAM",
    )
    with db.session() as s:
        [row] = registry.files_for_object(s, "htsnexus_test_NA12878")
        assert row.sha256 == hashlib.sha256(bam.read_bytes()).hexdigest()
        assert row.md5 == hashlib.md5(bam.read_bytes()).hexdigest()
        assert row.size == bam.stat().st_size
        assert row.index_format == "BAI"
    [again] = registry.add_files(db, [bam], "ds1", progress=False, verify=True)
    assert again.outcome == "unchanged"
    assert count_files(db) == 1


def test_bam_and_cram_share_one_object_id(db, testdata):
    registry.add_dataset(db, "ds1", access="public")
    reads = testdata / "reads"
    out = registry.add_files(
        db,
        [reads / "HG00100.chr17slice.bam", reads / "HG00100.chr17slice.cram"],
        "ds1",
        object_id="HG00100",
        reference=str(reads / "mpileup.ref.fa"),
        progress=False,
    )
    assert {(r.object_id, r.format) for r in out} == {("HG00100", "BAM"), ("HG00100", "CRAM")}


def test_changed_file_is_detected(db, bam):
    registry.add_dataset(db, "ds1", access="public")
    registry.add_files(db, [bam], "ds1", progress=False)
    data = bytearray(bam.read_bytes())
    data[100] ^= 0xFF
    bam.write_bytes(bytes(data))
    with pytest.raises((Conflict, InvalidInput)):
        registry.add_files(db, [bam], "ds1", progress=False)


def test_missing_index_is_refused_and_nothing_written(db, bam):
    registry.add_dataset(db, "ds1", access="public")
    (bam.parent / (bam.name + ".bai")).unlink()
    with pytest.raises(InvalidInput, match="no index"):
        registry.add_files(db, [bam], "ds1", progress=False)
    assert count_files(db) == 0


def test_unknown_dataset_is_not_found(db, bam):
    with pytest.raises(NotFound):
        registry.add_files(db, [bam], "nope", progress=False)


def test_not_a_genomics_file_is_refused(db, tmp_path):
    registry.add_dataset(db, "ds1", access="public")
    junk = tmp_path / "junk.bam"
    junk.write_bytes(b"hello world")
    with pytest.raises(InvalidInput, match="not a BAM"):
        registry.add_files(db, [junk], "ds1", progress=False)


def test_interrupted_add_writes_nothing(db, bam, monkeypatch):
    """An interruption while hashing (Ctrl-C) leaves no row behind."""
    registry.add_dataset(db, "ds1", access="public")
    real = registry.checksums
    calls = {"n": 0}

    def interrupted(path, progress=None):
        calls["n"] += 1
        if calls["n"] == 2:  # after the file, while hashing its index
            raise KeyboardInterrupt
        return real(path, progress)

    monkeypatch.setattr(registry, "checksums", interrupted)
    with pytest.raises(KeyboardInterrupt):
        registry.add_files(db, [bam], "ds1", progress=False)
    assert count_files(db) == 0
    monkeypatch.setattr(registry, "checksums", real)
    assert registry.add_files(db, [bam], "ds1", progress=False)[0].outcome == "created"


def test_a_bam_with_another_bams_index_is_refused(db, testdata, tmp_path):
    bam = tmp_path / "HG00100.chr17slice.bam"
    shutil.copy(testdata / "reads/HG00100.chr17slice.bam", bam)
    shutil.copy(testdata / "reads/htsnexus_test_NA12878.bam.bai", f"{bam}.bai")
    registry.add_dataset(db, "ds1", access="public")
    with pytest.raises(InvalidInput, match="does not belong to this file"):
        registry.add_files(db, [bam], "ds1", progress=False)
    assert count_files(db) == 0


def test_without_the_index_check_the_wrong_index_is_registered(db, testdata, tmp_path, monkeypatch):
    """The protection switched off: the same file registers and the index is wrong for it."""
    bam = tmp_path / "HG00100.chr17slice.bam"
    shutil.copy(testdata / "reads/HG00100.chr17slice.bam", bam)
    shutil.copy(testdata / "reads/htsnexus_test_NA12878.bam.bai", f"{bam}.bai")
    registry.add_dataset(db, "ds1", access="public")
    monkeypatch.setattr(registry, "check_index", lambda *a: None)
    [result] = registry.add_files(db, [bam], "ds1", progress=False)
    assert result.outcome == "created" and count_files(db) == 1


def test_cli_refuses_a_mismatched_index_and_verify_reports_changes(settings, testdata, tmp_path):
    from click.testing import CliRunner

    from server.cli import Ctx, main

    runner, obj = CliRunner(), Ctx(settings)
    vcf = tmp_path / "NA20787.vcf.gz"
    shutil.copy(testdata / "variants/NA20787.vcf.gz", vcf)
    shutil.copy(testdata / "variants/cyvcf2_test.vcf.gz.tbi", f"{vcf}.tbi")
    assert (
        runner.invoke(main, ["dataset", "add", "ds1", "--access", "public"], obj=obj).exit_code == 0
    )
    r = runner.invoke(main, ["files", "add", str(vcf), "--dataset", "ds1", "--quiet"], obj=obj)
    assert r.exit_code == 1 and "does not belong to this file" in r.output, r.output
    shutil.copy(testdata / "variants/NA20787.vcf.gz.tbi", f"{vcf}.tbi")
    r = runner.invoke(main, ["files", "add", str(vcf), "--dataset", "ds1", "--quiet"], obj=obj)
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["files", "verify"], obj=obj)
    assert r.exit_code == 0 and "ok: NA20787 VCF" in r.output, r.output
    with open(f"{vcf}.tbi", "ab") as fh:
        fh.write(b"x")
    r = runner.invoke(main, ["files", "verify", "NA20787"], obj=obj)
    assert r.exit_code == 1 and "CHANGED: NA20787 VCF: index size" in r.output, r.output
    r = runner.invoke(main, ["files", "verify", "nonesuch"], obj=obj)
    assert r.exit_code == 1 and "no registered file" in r.output
    obj.db.dispose()
