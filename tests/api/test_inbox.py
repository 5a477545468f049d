"""The inbox, acting as a sequencing centre: files encrypted with the ``crypt4gh``
CLI for the node's public key, uploaded in chunks (resumed, corrupted, wrong
key, not a genomics file), ingested by the pipeline and registered.

Real tokens from the development issuer, real databases (SQLite and
PostgreSQL); checksums are compared with hashlib on the original files and
the archived copies are decrypted again with the node's key.
"""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from server.auth.roles import add_role
from server.db.tables import AuditEvent, DataFile
from server.inbox.ingest import Ingest
from server.registry import add_dataset
from tests.conftest import node_settings
from tests.support import c4gh

PASSPHRASE = "node-passphrase-for-tests"
BAM = "reads/htsnexus_test_NA12878.bam"
CRAM = "reads/htsnexus_test_NA12878.cram"
VCF = "variants/NA20787.vcf.gz"


def inbox_settings(tmp_path, db_url, kit, **overrides):
    """A test node with an inbox (1 MiB chunks) and a Crypt4GH passphrase,
    trusting ``kit``'s issuer."""
    base = node_settings(
        tmp_path / "var",
        db_url,
        log_format="text",
        c4gh_passphrase=PASSPHRASE,
        inbox_max_chunk_bytes=1 << 20,
        **overrides,
    )
    return kit.trusting(base)


@pytest.fixture
def settings(tmp_path, db_url, kit):
    return inbox_settings(tmp_path, db_url, kit)


@pytest.fixture
def node_pub(settings, db, client):
    from server.c4gh.keys import key_paths, keygen

    keygen(settings)
    add_dataset(db, "ctl", access="controlled", grant_value="urn:ds:ctl")
    add_dataset(db, "other", access="controlled")
    add_role(db, "ctl", "submitter", "alice")
    return key_paths(settings)[1]


@pytest.fixture
def headers(kit) -> dict:
    """The request headers of alice, a submitter of dataset ctl (``node_pub`` makes her one)."""
    return auth(kit.registered("alice"))


def with_edit_list(src, node_pub) -> bytes:
    """``src`` encrypted for the node key with an edit list in the header that
    shows only its first bytes, written with the crypt4gh package's own
    primitives (as a submitter's tool could)."""
    import os

    from crypt4gh import CIPHER_SEGMENT_SIZE, SEGMENT_SIZE, sodium
    from crypt4gh.keys import get_public_key

    from server.c4gh.stream import header_for

    session = os.urandom(32)
    sender = os.urandom(32)
    header = header_for([session], [(0, sender, get_public_key(str(node_pub)))], [0, 1000])
    plain, out = src.read_bytes(), [header]
    for i in range(0, len(plain), SEGMENT_SIZE):
        cipher = bytearray(CIPHER_SEGMENT_SIZE)
        n = sodium.chacha20poly1305_encrypt(cipher, plain[i : i + SEGMENT_SIZE], session)
        out.append(bytes(cipher[:n]))
    return b"".join(out)


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def announce(client, headers, data: bytes, filename: str, *, dataset="ctl", **extra) -> dict:
    """Start the upload of ``data`` (its size and SHA-256 declared); the new upload."""
    body = {
        "dataset": dataset,
        "filename": filename,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    } | extra
    resp = client.post("/inbox/uploads", json=body, headers=headers)
    assert resp.status_code == 201, resp.json()
    return resp.json()


def announce_encrypted(client, headers, node_pub, src, tmp_path) -> tuple[dict, bytes]:
    """``src`` encrypted for the node with the crypt4gh CLI, its upload started:
    the upload and the encrypted bytes."""
    enc = c4gh.encrypt(src, node_pub, tmp_path / f"{src.name}.c4gh")
    data = enc.read_bytes()
    return announce(client, headers, data, enc.name), data


def put_chunk(client, headers, up: dict, offset: int, content: bytes):
    return client.put(
        f"/inbox/uploads/{up['id']}?offset={offset}",
        content=content,
        headers=headers | {"Content-Type": "application/octet-stream"},
    )


def upload(client, headers, path, *, dataset="ctl", chunk=1 << 20, **extra) -> dict:
    data = path.read_bytes()
    up = announce(client, headers, data, path.name, dataset=dataset, **extra)
    for offset in range(0, len(data), chunk):
        resp = put_chunk(client, headers, up, offset, data[offset : offset + chunk])
        assert resp.status_code == 200, resp.json()
    return up


def complete(client, headers, up) -> tuple[int, dict]:
    resp = client.post(f"/inbox/uploads/{up['id']}/complete", headers=headers)
    return resp.status_code, resp.json()


class TestGetPublicKey:
    def test_public_key_is_the_node_key_file_returns_200(self, client, node_pub):
        resp = client.get("/inbox/public-key")
        assert resp.status_code == 200
        assert resp.content == node_pub.read_bytes()

    def test_before_keygen_returns_503_saying_what_to_do(self, client):
        # a node without its key pair is not broken, only not set up yet
        resp = client.get("/inbox/public-key")
        assert resp.status_code == 503
        assert "genomeport crypt4gh keygen" in resp.text


class TestCreateUpload:
    def test_without_token_returns_401(self, client, node_pub):
        resp = client.post(
            "/inbox/uploads",
            json={"dataset": "ctl", "filename": "a.bam.c4gh", "size": 10, "sha256": "0" * 64},
        )
        assert resp.status_code == 401

    def test_not_a_submitter_returns_403(self, client, node_pub, kit, db):
        for sub, dataset in (("bob", "ctl"), ("alice", "other")):
            resp = client.post(
                "/inbox/uploads",
                json={"dataset": dataset, "filename": "a.bam.c4gh", "size": 10, "sha256": "0" * 64},
                headers=auth(kit.registered(sub)),
            )
            assert resp.status_code == 403
        with db.session() as s:
            denied = s.scalars(
                sa.select(AuditEvent).where(
                    AuditEvent.api == "inbox", AuditEvent.outcome == "denied"
                )
            ).all()
        assert len(denied) == 2

    @pytest.mark.parametrize(
        "filename", ["../../etc/passwd.c4gh", "a/b.c4gh", "plain.bam", ".hidden.c4gh", ""]
    )
    def test_unsafe_filename_returns_400(self, client, node_pub, headers, filename):
        resp = client.post(
            "/inbox/uploads",
            json={"dataset": "ctl", "filename": filename, "size": 10, "sha256": "0" * 64},
            headers=headers,
        )
        assert resp.status_code == 400


class TestPutChunk:
    def test_resumed_upload_is_ingested_returns_200(
        self, client, node_pub, kit, headers, db, settings, testdata, tmp_path
    ):
        up, data = announce_encrypted(client, headers, node_pub, testdata / BAM, tmp_path)
        first = 700_000
        resp = put_chunk(client, headers, up, 0, data[:first])
        assert resp.json()["received"] == first
        # the connection dropped; the centre retries a chunk it already sent: refused
        assert put_chunk(client, headers, up, 0, data[:first]).status_code == 409
        # it asks where to resume, and goes on from there
        state = client.get(f"/inbox/uploads/{up['id']}", headers=headers).json()
        assert state["received"] == first and state["state"] == "uploading"
        for offset in range(first, len(data), 1 << 20):
            resp = put_chunk(client, headers, up, offset, data[offset : offset + (1 << 20)])
            assert resp.status_code == 200
        # another submitter cannot see or touch it
        other = auth(kit.registered("bob"))
        assert client.get(f"/inbox/uploads/{up['id']}", headers=other).status_code == 404
        status, out = complete(client, headers, up)
        assert (status, out["state"]) == (200, "queued")

        done = Ingest(settings, db).run_once()
        assert done.state == "ingested", done.reason
        with db.session() as s:
            row = s.scalar(sa.select(DataFile).where(DataFile.object_id == done.accession))
            assert row.format == "BAM"
            assert row.sha256 == c4gh.sha256(testdata / BAM)
            assert row.size == (testdata / BAM).stat().st_size
            assert row.location.endswith(".bam.c4gh")
        state = client.get(f"/inbox/uploads/{up['id']}", headers=headers).json()
        assert state["state"] == "ingested" and state["accession"] == done.accession
        assert not (tmp_path / "var" / "inbox" / "ctl" / f"{up['id']}.c4gh").exists()

    def test_revoked_submitter_cannot_go_on_returns_403(self, client, node_pub, headers, db):
        from server.auth.roles import remove_role

        body = {"dataset": "ctl", "filename": "x.bam.c4gh", "size": 10, "sha256": "0" * 64}
        up = client.post("/inbox/uploads", json=body, headers=headers).json()
        remove_role(db, "ctl", "submitter", "alice")
        resp = put_chunk(client, headers, up, 0, b"x" * 5)
        assert resp.status_code == 403

    def test_chunk_past_declared_size_returns_400(self, client, node_pub, headers):
        body = {"dataset": "ctl", "filename": "x.bam.c4gh", "size": 10, "sha256": "0" * 64}
        up = client.post("/inbox/uploads", json=body, headers=headers).json()
        resp = put_chunk(client, headers, up, 0, b"x" * 11)
        assert resp.status_code == 400


class TestCompleteUpload:
    def test_corrupted_upload_is_rejected_returns_400(
        self, client, node_pub, headers, db, settings, testdata, tmp_path
    ):
        up, good = announce_encrypted(client, headers, node_pub, testdata / VCF, tmp_path)
        bad = bytearray(good)
        bad[len(bad) // 2] ^= 0xFF  # one bit flipped in transit
        for offset in range(0, len(bad), 1 << 20):
            put_chunk(client, headers, up, offset, bytes(bad[offset : offset + (1 << 20)]))
        status, out = complete(client, headers, up)
        assert status == 400 and "checksum mismatch" in out["msg"]
        state = client.get(f"/inbox/uploads/{up['id']}", headers=headers).json()
        assert state["state"] == "rejected"
        assert Ingest(settings, db).run_once() is None  # nothing queued
        with db.session() as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(DataFile)) == 0

    def test_bam_with_index_cram_and_vcf_are_ingested_and_listed(
        self, client, node_pub, headers, db, settings, testdata, tmp_path
    ):
        from server.cli import main

        bai = c4gh.encrypt(testdata / (BAM + ".bai"), node_pub, tmp_path / "na.bam.bai.c4gh")
        index = upload(client, headers, bai, kind="index")
        assert complete(client, headers, index)[1]["state"] == "received"
        uploads = {}
        for name, rel, extra in (
            ("bam", BAM, {"index": index["id"], "object_id": "NA12878"}),
            ("cram", CRAM, {"object_id": "NA12878"}),
            ("vcf", VCF, {}),
        ):
            enc = c4gh.encrypt(testdata / rel, node_pub, tmp_path / f"{name}.c4gh")
            up = upload(client, headers, enc, **extra)
            assert complete(client, headers, up)[1]["state"] == "queued"
            uploads[name] = (up, rel)
        assert Ingest(settings, db).work(once=True) == 3
        with db.session() as s:
            rows = {r.format: r for r in s.scalars(sa.select(DataFile))}
        assert sorted(rows) == ["BAM", "CRAM", "VCF"]
        assert rows["BAM"].object_id == rows["CRAM"].object_id == "NA12878"
        for fmt, rel in (("BAM", BAM), ("CRAM", CRAM), ("VCF", VCF)):
            assert rows[fmt].sha256 == c4gh.sha256(testdata / rel)
            assert rows[fmt].md5 == hashlib.md5((testdata / rel).read_bytes()).hexdigest()
        # the submitted BAI was kept (its plaintext, checksummed)
        assert rows["BAM"].index_sha256 == c4gh.sha256(testdata / (BAM + ".bai"))
        env = {
            "GENOMEPORT_DATABASE_URL": settings.database_url,
            "GENOMEPORT_VAR_DIR": settings.var_dir,
        }
        out = CliRunner().invoke(main, ["ingest", "list", "--json"], env=env)
        assert out.exit_code == 0, out.output
        import json

        listed = {r["id"]: r for r in json.loads(out.output)}
        for up, _ in uploads.values():
            assert listed[up["id"]]["state"] == "ingested"
        assert listed[index["id"]]["state"] == "ingested"
        with db.session() as s:
            actions = s.scalars(
                sa.select(AuditEvent.action).where(
                    AuditEvent.api == "inbox", AuditEvent.outcome == "granted"
                )
            ).all()
        assert actions.count("ingest") == 3 and actions.count("upload.complete") == 4


class TestIngestRejects:
    @pytest.mark.parametrize(
        "case", ["other key", "not genomics", "truncated", "wrong index", "edit list"]
    )
    def test_bad_upload_is_rejected_and_nothing_registered(
        self, case, client, node_pub, headers, db, settings, testdata, tmp_path
    ):
        extra = {}
        src = testdata / BAM
        recipient = node_pub
        if case == "other key":
            _, recipient = c4gh.keygen(tmp_path / "stranger", "stranger")
        elif case == "not genomics":
            src = tmp_path / "notes.txt"
            src.write_bytes(b"patient notes\n" * 5000)
        elif case == "truncated":
            src = tmp_path / "short.bam"
            src.write_bytes((testdata / BAM).read_bytes()[:1_000_000])
        elif case == "wrong index":
            other = testdata / "reads/HG00100.chr17slice.bam.bai"
            wrong = c4gh.encrypt(other, node_pub, tmp_path / "wrong.bai.c4gh")
            idx = upload(client, headers, wrong, kind="index")
            complete(client, headers, idx)
            extra = {"index": idx["id"]}
        enc = c4gh.encrypt(src, recipient, tmp_path / "sub.c4gh")
        if case == "edit list":  # a header that shows only part of the file
            enc.write_bytes(with_edit_list(src, node_pub))
        up = upload(client, headers, enc, **extra)
        assert complete(client, headers, up)[0] == 200
        done = Ingest(settings, db).run_once()
        assert done.state == "rejected"
        expected = {
            "other key": "not encrypted for this node",
            "not genomics": "not a BAM",
            "truncated": "truncated",
            "wrong index": "does not describe",
            "edit list": "edit list",
        }[case]
        assert expected in done.reason
        state = client.get(f"/inbox/uploads/{up['id']}", headers=headers).json()
        assert state["state"] == "rejected" and expected in state["reason"]
        with db.session() as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(DataFile)) == 0
        archive = tmp_path / "var" / "archive"
        assert not archive.exists() or not any(p.is_file() for p in archive.rglob("*"))
