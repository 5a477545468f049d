"""The Beacon loader reads a file once, from its path or from a stream.

A stream (here a pipe of the file's bytes, as the ingest's decrypted
Crypt4GH file is) gives the same rows as the path, for VCF.gz, plain VCF
and BCF; its sha-256 is checked as it is read; an interrupted stream load
resumes; a stream that is not a VCF/BCF is refused with the reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import threading

import pytest
import sqlalchemy as sa

from server.beacon.journal import LoadError
from server.beacon.tables import BeaconLoad, BeaconVariant
from server.beacon.vcf import abandon, load_vcf
from tests.unit.beacon.conftest import add_dataset

SOURCE = "variants/test_1000G_hg38.vcf.gz"
COLUMNS = ("chrom", "start", "end", "ref", "alt", "ac", "an", "hom", "het", "carriers")


@pytest.fixture(scope="module")
def files(tmp_path_factory, testdata):
    """Three samples of the 1000 Genomes VCF as VCF.gz, plain VCF and BCF (bcftools)."""
    tmp = tmp_path_factory.mktemp("source")
    out = {}
    for fmt, name in (("z", "cut.vcf.gz"), ("v", "cut.vcf"), ("b", "cut.bcf")):
        out[fmt] = tmp / name
        cmd = ["bcftools", "view", "-s", "HG00096,HG00097,HG00099", f"-O{fmt}"]
        subprocess.run([*cmd, "-o", str(out[fmt]), str(testdata / SOURCE)], check=True)
    return out


def piped(path):
    """A reader of ``path``'s bytes through an OS pipe (not seekable, short reads)."""
    r, w = os.pipe()

    def feed() -> None:
        # (the reader may stop early: a load found unchanged reads the header only)
        with (
            contextlib.suppress(BrokenPipeError),
            open(path, "rb") as src,
            os.fdopen(w, "wb") as out,
        ):
            while chunk := src.read(50_000):
                out.write(chunk)

    threading.Thread(target=feed, daemon=True).start()
    return os.fdopen(r, "rb", buffering=0)


def rows(db, dataset_id):
    with db.session() as s:
        query = sa.select(*(getattr(BeaconVariant, c) for c in COLUMNS)).where(
            BeaconVariant.dataset_id == dataset_id
        )
        return sorted(tuple(r) for r in s.execute(query))


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", ["z", "v", "b"])
def test_a_stream_loads_what_the_path_loads(db, files, fmt):
    path = files[fmt]
    add_dataset(db, "by-path")
    add_dataset(db, "by-stream")
    load_vcf(db, path, "by-path", progress=False)
    with piped(path) as fh:
        result = load_vcf(
            db, "label.vcf", "by-stream", stream=fh, sha256=sha256(path), progress=False
        )
    assert result.status == "loaded" and result.path == "label.vcf"
    expected = rows(db, "by-path")
    assert expected and rows(db, "by-stream") == expected
    # the same content again: nothing read past the header, nothing changed
    with piped(path) as fh:
        again = load_vcf(db, "label.vcf", "by-stream", stream=fh, sha256=sha256(path))
    assert again.status == "unchanged"


def test_a_stream_not_matching_its_checksum_leaves_nothing(db, files):
    add_dataset(db, "ds")
    with piped(files["z"]) as fh, pytest.raises(LoadError, match="not the one announced"):
        load_vcf(db, "x.vcf.gz", "ds", stream=fh, sha256="0" * 64, progress=False)
    assert rows(db, "ds") == []
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(BeaconLoad)) == 0


def test_a_stream_needs_its_checksum(db, files):
    add_dataset(db, "ds")
    with pytest.raises(ValueError, match="sha-256"):
        load_vcf(db, "x.vcf.gz", "ds", stream=io.BytesIO(files["z"].read_bytes()))


@pytest.mark.parametrize("fmt", ["z", "b"])
def test_an_interrupted_stream_load_resumes(db, files, fmt):
    path = files[fmt]
    add_dataset(db, "whole")
    add_dataset(db, "ds")
    load_vcf(db, path, "whole", progress=False)
    digest = sha256(path)
    with piped(path) as fh:  # stopped early: the pipe's writer must not hang
        first = load_vcf(
            db, "c.vcf", "ds", stream=fh, sha256=digest, batch_size=300, stop_after=600
        )
    assert first.status == "interrupted"
    with piped(path) as fh:
        second = load_vcf(db, "c.vcf", "ds", stream=fh, sha256=digest, batch_size=300)
    assert second.status == "resumed"
    assert rows(db, "ds") == rows(db, "whole")


def test_abandon_drops_a_staged_load(db, files):
    add_dataset(db, "ds")
    digest = sha256(files["z"])
    with piped(files["z"]) as fh:
        load_vcf(db, "c.vcf", "ds", stream=fh, sha256=digest, batch_size=300, stop_after=300)
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(BeaconVariant)) > 0
    assert abandon(db, "ds", digest) == 1
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(BeaconVariant)) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(BeaconLoad)) == 0


@pytest.mark.parametrize(
    "content,reason",
    [
        (b"patient notes\n" * 100, "not a VCF/BCF"),
        (b"##fileformat=VCFv4.2\n##contig=<ID=chr22>\n", "no #CHROM line"),
    ],
)
def test_a_stream_that_is_no_vcf_is_refused(db, content, reason):
    add_dataset(db, "ds")
    digest = hashlib.sha256(content).hexdigest()
    with pytest.raises(LoadError, match=reason):
        load_vcf(db, "notes.vcf", "ds", stream=io.BytesIO(content), sha256=digest)


def test_a_truncated_compressed_stream_is_refused(db, files):
    add_dataset(db, "ds")
    data = files["z"].read_bytes()
    cut = data[: len(data) * 2 // 3]
    digest = hashlib.sha256(cut).hexdigest()
    with pytest.raises(LoadError, match="damaged or truncated"):
        load_vcf(db, "t.vcf.gz", "ds", stream=io.BytesIO(cut), sha256=digest, progress=False)
    assert rows(db, "ds") == []
