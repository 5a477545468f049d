"""An inbox on S3 (a moto server in its own process): the submitter PUTs parts
straight to presigned URLs (the node never carries the bytes), resumes after
an interruption from the parts the store lists, and the ingest reads the
object from the bucket."""

from __future__ import annotations

import hashlib
import subprocess

import pytest
import requests
import sqlalchemy as sa

from server.auth.roles import add_role
from server.db.tables import DataFile
from server.inbox.ingest import Ingest
from server.registry import add_dataset
from server.storage import s3
from tests.support import c4gh, moto

pytestmark = pytest.mark.slow
BAM = "reads/htsnexus_test_NA12878.bam"


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    with moto.server(tmp_path_factory.mktemp("moto")) as url:
        moto.client(url).create_bucket(Bucket="inbox")
        yield url


@pytest.fixture
def settings(settings, kit, s3_server):
    return kit.trusting(settings).with_overrides(
        **moto.overrides(s3_server),
        inbox_dir="s3://inbox/incoming",
        c4gh_passphrase="s3-inbox-passphrase",
    )


def test_multipart_upload_resumes_and_is_ingested(settings, db, client, kit, testdata, tmp_path):
    from server.c4gh.keys import key_paths, keygen

    keygen(settings)
    add_dataset(db, "ctl", access="controlled")
    add_role(db, "ctl", "submitter", "alice")
    big = tmp_path / "big.bam"  # several parts of 8 MiB: four copies of the reads, merged
    src = str(testdata / BAM)
    subprocess.run(
        ["samtools", "merge", "-f", "-l", "0", str(big), src, src, src, src],
        check=True,
        capture_output=True,
    )
    enc = c4gh.encrypt(big, key_paths(settings)[1], tmp_path / "big.bam.c4gh")
    data = enc.read_bytes()
    assert len(data) > 2 * s3.PART_SIZE
    headers = {"Authorization": f"Bearer {kit.registered('alice')}"}
    resp = client.post(
        "/inbox/uploads",
        json={
            "dataset": "ctl",
            "filename": enc.name,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
        headers=headers,
    )
    assert resp.status_code == 201, resp.text
    up = resp.json()
    parts = up["multipart"]["parts"]
    size = up["multipart"]["part_size"]
    assert [p["part_number"] for p in parts] == list(range(1, len(parts) + 1))
    # the centre sends the first part straight to the bucket, then loses its connection
    first = parts[0]
    assert requests.put(first["url"], data=data[:size], timeout=30).status_code == 200
    # chunks through the node are refused for an upload that goes to object storage
    resp = client.put(
        f"/inbox/uploads/{up['id']}?offset=0",
        content=data[:10],
        headers=headers | {"Content-Type": "application/octet-stream"},
    )
    assert resp.status_code == 409
    # completing early is refused: parts are missing
    assert client.post(f"/inbox/uploads/{up['id']}/complete", headers=headers).status_code == 400
    state = client.get(f"/inbox/uploads/{up['id']}", headers=headers).json()
    assert state["received"] == size
    missing = state["multipart"]["parts"]
    assert [p["part_number"] for p in missing] == [p["part_number"] for p in parts[1:]]
    for p in missing:
        n = p["part_number"]
        chunk = data[(n - 1) * size : n * size]
        assert requests.put(p["url"], data=chunk, timeout=30).status_code == 200
    resp = client.post(f"/inbox/uploads/{up['id']}/complete", headers=headers)
    assert resp.status_code == 200 and resp.json()["state"] == "queued", resp.text

    done = Ingest(settings, db).run_once()
    assert done.state == "ingested", done.reason
    with db.session() as s:
        row = s.scalar(sa.select(DataFile))
        assert row.sha256 == c4gh.sha256(big)
    # the inbox object is gone once archived
    with pytest.raises(FileNotFoundError):
        s3.S3Storage(settings, done.location).stat()
