"""The ingest worker: an interrupted ingest resumes, two workers never share one."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from server.db.tables import DataFile
from server.inbox import ingest
from server.inbox.ingest import Ingest, enqueue_local
from server.inbox.tables import InboxUpload
from server.registry import add_dataset
from tests.conftest import node_settings
from tests.support import c4gh

BAM = "reads/HG00100.chr17slice.bam"


@pytest.fixture
def settings(tmp_path, db_url):
    return node_settings(
        tmp_path / "var", db_url, c4gh_passphrase="unit-passphrase", ingest_lease_seconds=1
    )


@pytest.fixture
def queued(settings, db, testdata, tmp_path):
    from server.c4gh.keys import key_paths, keygen

    keygen(settings)
    add_dataset(db, "ds", access="controlled")
    enc = c4gh.encrypt(testdata / BAM, key_paths(settings)[1], tmp_path / "hg.bam.c4gh")
    return enqueue_local(settings, db, enc, "ds", operator="centre")


class Crash(BaseException):
    """The worker process dies (as by SIGKILL: no handler runs)."""


def test_interrupted_ingest_resumes_with_the_same_accession(
    settings, db, queued, testdata, monkeypatch
):
    real = Ingest._register

    def die(self, *args, **kw):
        raise Crash()

    monkeypatch.setattr(Ingest, "_register", die)
    with pytest.raises(Crash):
        Ingest(settings, db, worker_id="w1").run_once()
    with db.session() as s:
        row = s.get(InboxUpload, queued.pk)
        assert row.state == "ingesting" and row.accession
        first_accession = row.accession
        assert s.scalar(sa.select(sa.func.count()).select_from(DataFile)) == 0
    # while the dead worker's lease holds, nobody takes the upload over
    assert Ingest(settings, db, worker_id="w2").claim() is None
    with db.session() as s:
        s.get(InboxUpload, queued.pk).lease = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    monkeypatch.setattr(Ingest, "_register", real)
    done = Ingest(settings, db, worker_id="w2").run_once()
    assert done.state == "ingested" and done.accession == first_accession
    assert done.attempts == 2
    with db.session() as s:
        rows = s.scalars(sa.select(DataFile)).all()
        assert len(rows) == 1 and rows[0].sha256 == c4gh.sha256(testdata / BAM)
    archive = settings.effective_archive_dir / "ds"
    assert not [p for p in archive.iterdir() if p.name.startswith(".")]  # no partial files


def test_a_claimed_upload_is_not_claimed_twice(settings, db, queued):
    first = Ingest(settings, db, worker_id="a").claim()
    assert first is not None and first.pk == queued.pk
    assert Ingest(settings, db, worker_id="b").claim() is None


def test_detect_format_refuses_plain_text():
    with pytest.raises(ingest.Rejected):
        ingest.detect_format(b"##fileformat=VCFv4.2\n")  # a VCF, but not BGZF-compressed
