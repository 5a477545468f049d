"""Key rotation: every archived header moves to the new key, the segments stay."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from server.c4gh import keys, stream
from server.cli import main
from server.db.tables import DataFile
from server.inbox.ingest import Ingest, enqueue_local
from server.registry import add_dataset
from server.storage import for_location
from tests.conftest import node_settings
from tests.support import c4gh

FILES = ("reads/HG00100.chr17slice.bam", "variants/spec-v4.3.vcf.gz")
PASSPHRASE = "rotation-passphrase"


@pytest.fixture
def settings(tmp_path, db_url):
    return node_settings(tmp_path / "var", db_url, c4gh_passphrase=PASSPHRASE)


def segments_of(path: str) -> bytes:
    with open(path, "rb") as fh:
        head = stream.read_header(fh)
        return hashlib.sha256(fh.read()).digest() + head.length.to_bytes(4, "little")


def test_rotate_moves_every_header_and_everything_still_decrypts(settings, db, testdata, tmp_path):
    keys.keygen(settings)
    add_dataset(db, "ds", access="controlled")
    for rel in FILES:
        enc = c4gh.encrypt(testdata / rel, keys.key_paths(settings)[1], tmp_path / "x.c4gh")
        enqueue_local(settings, db, enc, "ds", operator="centre")
    assert Ingest(settings, db).work(once=True) == 2
    old = keys.node_key(settings)
    with db.session() as s:
        rows = [(r.location, r.index_location, r.sha256) for r in s.scalars(sa.select(DataFile))]
    archived = [p for loc, idx, _ in rows for p in (loc, idx)]
    before = {p: segments_of(p) for p in archived}

    env = {
        "GENOMEPORT_DATABASE_URL": settings.database_url,
        "GENOMEPORT_VAR_DIR": settings.var_dir,
        "GENOMEPORT_C4GH_PASSPHRASE": PASSPHRASE,
        "GENOMEPORT_SIGNING_KEY": settings.signing_key,
    }
    out = CliRunner().invoke(main, ["crypt4gh", "rotate", "--quiet"], env=env)
    assert out.exit_code == 0, out.output
    assert f"rotated {len(archived)} archived file(s) from key {old.key_id}" in out.output
    keys.clear_cache()
    new = keys.node_key(settings)
    assert new.public != old.public
    assert list((settings.effective_key_dir / "retired").glob("*.sec"))

    for path in archived:
        with open(path, "rb") as fh:
            head = stream.read_header(fh)
        with pytest.raises(stream.NotCrypt4GH):  # no header packet for the old key is left
            stream.session_keys(head, old.decryption_keys)
        assert stream.session_keys(head, new.decryption_keys)
        assert segments_of(path) == before[path]  # the data segments are the same bytes

    # the registry follows, and the plaintext views and the crypt4gh CLI still decrypt
    with db.session() as s:
        for r in s.scalars(sa.select(DataFile)):
            plain = for_location(r.location, settings, registered=None)
            assert plain.stat().mtime_ns == r.mtime_ns
            assert hashlib.sha256(plain.read_all()).hexdigest() == r.sha256
    sec = keys.key_paths(settings)[0]
    for loc, _, sha in rows:
        done = subprocess.run(
            [c4gh.tool("crypt4gh"), "decrypt", "--sk", str(sec)],
            stdin=open(loc, "rb"),  # noqa: SIM115
            capture_output=True,
            check=True,
            env=dict(os.environ, C4GH_PASSPHRASE=PASSPHRASE),
        )
        assert hashlib.sha256(done.stdout).hexdigest() == sha


def test_interrupted_rotation_keeps_serving_and_finishes_when_run_again(
    settings, db, testdata, tmp_path
):
    from server.inbox import rotation

    keys.keygen(settings)
    add_dataset(db, "ds", access="controlled")
    enc = c4gh.encrypt(testdata / FILES[0], keys.key_paths(settings)[1], tmp_path / "x.c4gh")
    enqueue_local(settings, db, enc, "ds", operator="centre")
    assert Ingest(settings, db).work(once=True) == 1
    with db.session() as s:
        row = s.scalar(sa.select(DataFile))
        location, sha = row.location, row.sha256
    # a rotation died after moving this file to the new key, before swapping the keys
    sec, pub = keys.key_paths(settings)
    new_sec, new_pub = sec.with_name("node.sec.new"), pub.with_name("node.pub.new")
    keys.generate(new_sec, new_pub, PASSPHRASE, "next")
    new = keys.NodeKey(keys.unlock(new_sec, PASSPHRASE), keys.read_public(new_pub), "")
    old = keys.node_key(settings)
    rotation.rewrite_header(Path(location), old.decryption_keys, new.recipients(new.public))
    plain = for_location(location, settings)
    assert hashlib.sha256(plain.read_all()).hexdigest() == sha  # still served
    rotation.rotate(settings, db)
    keys.clear_cache()
    assert keys.node_key(settings).public == new.public  # the pending key was kept
    with open(location, "rb") as fh:
        head = stream.read_header(fh)
    assert stream.session_keys(head, keys.node_key(settings).decryption_keys)
    assert hashlib.sha256(for_location(location, settings).read_all()).hexdigest() == sha
