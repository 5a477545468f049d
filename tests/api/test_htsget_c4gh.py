"""htsget on Crypt4GH-archived files, acting as a researcher with their own key pair.

The files are ingested as a sequencing centre delivers them (encrypted with
the ``crypt4gh`` CLI for the node's key). A ticket with
``encryptionScheme=C4GH`` and the researcher's ``client-public-key`` is
fetched, its parts joined and decrypted with ``crypt4gh decrypt``; the
result, indexed with samtools/bcftools, must give exactly the records
samtools/bcftools give for the same region of the original file. Without
``encryptionScheme`` the same objects are read as plaintext through the data
plane and compared with pysam.
"""

from __future__ import annotations

import base64
import subprocess

import pysam
import pytest

from server.genomics.coords import to_region
from server.inbox.ingest import Ingest, enqueue_local
from server.registry import add_dataset
from tests.conftest import migrated, node_settings
from tests.support import c4gh

MEDIA = "application/vnd.ga4gh.htsget.v1.3.0+json"
FILES = {
    "na-bam": ("reads/htsnexus_test_NA12878.bam", "BAM"),
    "na-cram": ("reads/htsnexus_test_NA12878.cram", "CRAM"),
    "na20787": ("variants/NA20787.vcf.gz", "VCF"),
    "hg38-bcf": ("variants/test_1000G_hg38.bcf", "BCF"),
}
ENDPOINT = {"BAM": "reads", "CRAM": "reads", "VCF": "variants", "BCF": "variants"}
REGIONS = {
    "na-bam": [("11", 5_000_000, 5_010_000), ("20", 6_050_000, 6_060_000)],
    "na-cram": [("11", 5_000_000, 5_010_000)],
    "na20787": [("21", 16_000_000, 16_100_000)],
    "hg38-bcf": [("chr22", 10_600_000, 10_700_000)],
}


@pytest.fixture(scope="module")
def settings(module_db_url, kit, tmp_path_factory):
    var = tmp_path_factory.mktemp("c4gh-var")
    return kit.trusting(
        node_settings(var, module_db_url, log_format="text", c4gh_passphrase="node-passphrase")
    )


@pytest.fixture(scope="module")
def node(settings, testdata, tmp_path_factory):
    """The node with every file ingested from the inbox, and its test client."""
    from server.c4gh.keys import key_paths, keygen
    from server.web.app import create_app

    db = migrated(settings)
    keygen(settings)
    add_dataset(db, "ctl", access="controlled", grant_value="urn:ds:ctl")
    work = tmp_path_factory.mktemp("centre")
    for object_id, (rel, _) in FILES.items():
        enc = c4gh.encrypt(testdata / rel, key_paths(settings)[1], work / f"{object_id}.c4gh")
        enqueue_local(settings, db, enc, "ctl", object_id=object_id, operator="centre")
    assert Ingest(settings, db).work(once=True) == len(FILES)
    cx = create_app(settings)
    with cx.test_client() as client:
        yield client, db
    cx.app.extensions["genomeport"].db.dispose()
    db.dispose()


@pytest.fixture(scope="module")
def researcher(tmp_path_factory):
    return c4gh.keygen(tmp_path_factory.mktemp("researcher"))


def fetch(client, tk: dict) -> bytes:
    parts = []
    for entry in tk["htsget"]["urls"]:
        url = entry["url"]
        if url.startswith("data:;base64,"):
            parts.append(base64.b64decode(url[len("data:;base64,") :]))
            continue
        resp = client.get(url, headers=entry.get("headers", {}))
        assert resp.status_code in (200, 206), resp.text
        parts.append(resp.content)
    return b"".join(parts)


def c4gh_ticket(client, kit, researcher, object_id, endpoint, **params) -> dict:
    headers = {
        "Authorization": f"Bearer {kit.grant('urn:ds:ctl')}",
        "client-public-key": c4gh.client_key_header(researcher[1]),
    }
    resp = client.get(
        f"/{endpoint}/{object_id}", params={"encryptionScheme": "C4GH", **params}, headers=headers
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == MEDIA
    return resp.json()


def view(path, fmt: str, region: str) -> list[str]:
    """The region's records as samtools / bcftools print them."""
    if fmt in ("BAM", "CRAM"):
        cmd = ["samtools", "view", str(path), region]
    else:
        cmd = ["bcftools", "view", "-H", "-r", region, str(path)]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()


def index(path, fmt: str) -> None:
    cmd = ["samtools", "index"] if fmt in ("BAM", "CRAM") else ["bcftools", "index", "-f"]
    subprocess.run([*cmd, str(path)], check=True, capture_output=True)


class TestC4ghTickets:
    @pytest.mark.parametrize("object_id", sorted(FILES))
    def test_region_decrypts_to_the_same_records_returns_200(
        self, node, kit, researcher, testdata, tmp_path, object_id
    ):
        client, _ = node
        rel, fmt = FILES[object_id]
        endpoint = ENDPOINT[fmt]
        ext = {"BAM": "bam", "CRAM": "cram", "VCF": "vcf.gz", "BCF": "bcf"}[fmt]
        for n, (ref, start, end) in enumerate(REGIONS[object_id]):
            tk = c4gh_ticket(
                client,
                kit,
                researcher,
                object_id,
                endpoint,
                referenceName=ref,
                start=start,
                end=end,
            )
            joined = fetch(client, tk)
            assert joined.startswith(b"crypt4gh")
            plain = c4gh.decrypt(joined, researcher[0])
            out = tmp_path / f"slice{n}.{ext}"
            out.write_bytes(plain)
            index(out, fmt)
            region = to_region(ref, start, end)
            expected = view(testdata / rel, fmt, region)
            assert expected, "the test region must hold records"
            assert view(out, fmt, region) == expected
            assert len(plain) < (testdata / rel).stat().st_size or fmt in ("VCF", "BCF")

    def test_header_class_decrypts_to_the_header_returns_200(
        self, node, kit, researcher, testdata, tmp_path
    ):
        client, _ = node
        tk = c4gh_ticket(client, kit, researcher, "na-bam", "reads", **{"class": "header"})
        plain = c4gh.decrypt(fetch(client, tk), researcher[0])
        out = tmp_path / "header.bam"
        out.write_bytes(plain)
        with (
            pysam.AlignmentFile(str(out)) as fh,
            pysam.AlignmentFile(str(testdata / FILES["na-bam"][0])) as orig,
        ):
            assert fh.references == orig.references

    def test_wrong_secret_key_cannot_decrypt(self, node, kit, researcher, tmp_path):
        client, _ = node
        tk = c4gh_ticket(
            client, kit, researcher, "na-bam", "reads", referenceName="11", start=0, end=10
        )
        other_sec, _ = c4gh.keygen(tmp_path / "other", "other")
        with pytest.raises(subprocess.CalledProcessError):
            c4gh.decrypt(fetch(client, tk), other_sec)

    def test_without_client_key_returns_400(self, node, kit):
        client, _ = node
        resp = client.get(
            "/reads/na-bam",
            params={"encryptionScheme": "C4GH"},
            headers={"Authorization": f"Bearer {kit.grant('urn:ds:ctl')}"},
        )
        assert resp.status_code == 400

    def test_garbage_client_key_returns_400(self, node, kit):
        client, _ = node
        for value in ("not base64!!", base64.b64encode(b"short").decode()):
            resp = client.get(
                "/reads/na-bam",
                params={"encryptionScheme": "C4GH"},
                headers={
                    "Authorization": f"Bearer {kit.grant('urn:ds:ctl')}",
                    "client-public-key": value,
                },
            )
            assert resp.status_code == 400

    def test_without_grant_returns_403(self, node, kit, researcher):
        client, _ = node
        resp = client.get(
            "/reads/na-bam",
            params={"encryptionScheme": "C4GH"},
            headers={
                "Authorization": f"Bearer {kit.registered('mallory')}",
                "client-public-key": c4gh.client_key_header(researcher[1]),
            },
        )
        assert resp.status_code == 403


class TestPlaintextThroughTheDataPlane:
    @pytest.mark.parametrize("object_id", ["na-bam", "na-cram", "na20787"])
    def test_region_read_with_pysam_returns_200(self, node, kit, testdata, tmp_path, object_id):
        client, _ = node
        rel, fmt = FILES[object_id]
        endpoint = ENDPOINT[fmt]
        ref, start, end = REGIONS[object_id][0]
        resp = client.get(
            f"/{endpoint}/{object_id}",
            params={"referenceName": ref, "start": start, "end": end},
            headers={"Authorization": f"Bearer {kit.grant('urn:ds:ctl')}"},
        )
        assert resp.status_code == 200, resp.text
        data = fetch(client, resp.json())
        ext = {"BAM": "bam", "CRAM": "cram", "VCF": "vcf.gz"}[fmt]
        out = tmp_path / f"plain.{ext}"
        out.write_bytes(data)
        index(out, fmt)
        region = to_region(ref, start, end)
        assert view(out, fmt, region) == view(testdata / rel, fmt, region)


class TestEncryptedOnlyDataset:
    def test_plaintext_ticket_refused_c4gh_served_returns_403(self, node, kit, researcher):
        from server.inbox.policy import set_encrypted_only

        client, db = node
        read = {"Authorization": f"Bearer {kit.grant('urn:ds:ctl')}"}
        region = {"referenceName": "11", "start": 5_000_000, "end": 5_001_000}
        assert set_encrypted_only(db, "ctl", True) == "changed"
        try:
            resp = client.get("/reads/na-bam", params=region, headers=read)
            assert resp.status_code == 403
            assert "encryptionScheme=C4GH" in resp.json()["htsget"]["message"]
            tk = c4gh_ticket(client, kit, researcher, "na-bam", "reads", **region)
            assert c4gh.decrypt(fetch(client, tk), researcher[0])
        finally:
            assert set_encrypted_only(db, "ctl", False) == "changed"
        assert client.get("/reads/na-bam", params=region, headers=read).status_code == 200


class TestDrsClientPublicKey:
    def test_access_url_serves_a_stream_for_the_client_key_returns_200(
        self, node, kit, researcher, testdata
    ):
        import hashlib

        client, _ = node
        headers = {
            "Authorization": f"Bearer {kit.grant('urn:ds:ctl')}",
            "client-public-key": c4gh.client_key_header(researcher[1]),
        }
        resp = client.get("/ga4gh/drs/v1/objects/na-bam.bam/access/https", headers=headers)
        assert resp.status_code == 200, resp.text
        url = resp.json()["url"]
        whole = client.get(url)
        assert whole.status_code == 200 and whole.content.startswith(b"crypt4gh")
        plain = c4gh.decrypt(whole.content, researcher[0])
        original = (testdata / FILES["na-bam"][0]).read_bytes()
        assert hashlib.sha256(plain).digest() == hashlib.sha256(original).digest()
        # ranged reads of the same URL are slices of the same bytes
        part = client.get(url, headers={"Range": "bytes=100-70099"})
        assert part.status_code == 206 and part.content == whole.content[100:70100]

    def test_access_url_without_key_serves_plaintext_returns_200(self, node, kit, testdata):
        client, _ = node
        headers = {"Authorization": f"Bearer {kit.grant('urn:ds:ctl')}"}
        resp = client.get("/ga4gh/drs/v1/objects/na-cram.cram/access/https", headers=headers)
        assert resp.status_code == 200, resp.text
        body = client.get(resp.json()["url"]).content
        assert body == (testdata / FILES["na-cram"][0]).read_bytes()
