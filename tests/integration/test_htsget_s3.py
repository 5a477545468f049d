"""Files registered at s3:// locations, against a real S3-compatible server.

A moto server runs as its own process; objects are uploaded with boto3. The
node computes tickets from the index and boundary blocks it reads with ranged
GETs, and hands out presigned URLs: the bytes never pass through the node.
"""

from __future__ import annotations

import base64
import hashlib

import httpx
import pysam
import pytest

from server.db.tables import DataFile
from server.registry import add_dataset
from tests.support import moto

pytestmark = pytest.mark.slow

BUCKET = "genomes"
FILES = {
    "reads/htsnexus_test_NA12878.bam": ("NA12878", "BAM", ".bai", "BAI"),
    "reads/htsnexus_test_NA12878.cram": ("NA12878", "CRAM", ".crai", "CRAI"),
    "variants/NA20787.vcf.gz": ("NA20787", "VCF", ".tbi", "TBI"),
}


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    with moto.server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture(scope="module")
def bucket(s3_server, testdata):
    s3 = moto.client(s3_server)
    s3.create_bucket(Bucket=BUCKET)
    for rel, (_, _, suffix, _) in FILES.items():
        for name in (rel, rel + suffix):
            s3.upload_file(str(testdata / name), BUCKET, name)
    return s3_server


@pytest.fixture
def settings(settings, bucket):
    return settings.with_overrides(**moto.overrides(bucket))


@pytest.fixture
def data(db, testdata, bucket):
    add_dataset(db, "cloud", access="public")
    with db.session() as s:
        for rel, (obj, fmt, suffix, ifmt) in FILES.items():
            raw = (testdata / rel).read_bytes()
            s.add(
                DataFile(
                    object_id=obj,
                    dataset_id="cloud",
                    format=fmt,
                    location=f"s3://{BUCKET}/{rel}",
                    index_location=f"s3://{BUCKET}/{rel}{suffix}",
                    index_format=ifmt,
                    size=len(raw),
                    mtime_ns=1,
                    sha256=hashlib.sha256(raw).hexdigest(),
                    md5=hashlib.md5(raw).hexdigest(),
                )
            )  # noqa: S324
    return testdata


def follow(client, path, **params) -> bytes:
    resp = client.get(path, params=params)
    assert resp.status_code == 200, resp.text
    out = []
    for entry in resp.json()["htsget"]["urls"]:
        url = entry["url"]
        if url.startswith("data:;base64,"):
            out.append(base64.b64decode(url[len("data:;base64,") :]))
            continue
        assert "/data/" not in url and "X-Amz-Signature" in url  # presigned, not proxied
        got = httpx.get(url, headers=entry.get("headers", {}), timeout=30)
        assert got.status_code in (200, 206), got.text
        out.append(got.content)
    return b"".join(out)


def names(tmp_path, data: bytes, suffix: str) -> set[str]:
    path = tmp_path / f"s3slice{suffix}"
    path.write_bytes(data)
    if suffix == ".vcf.gz":
        with pysam.VariantFile(str(path)) as fh:
            return {f"{r.chrom}:{r.pos}" for r in fh}
    with pysam.AlignmentFile(str(path), check_sq=False) as fh:
        return {f"{r.query_name}/{r.flag}" for r in fh.fetch(until_eof=True)}


def test_tickets_for_s3_objects_hold_every_record(client, data, tmp_path):
    local_bam = pysam.AlignmentFile(str(data / "reads/htsnexus_test_NA12878.bam"))
    want = {f"{r.query_name}/{r.flag}" for r in local_bam.fetch("11", 5000000, 5010000)}
    for fmt, suffix in (("BAM", ".bam"), ("CRAM", ".cram")):
        got = names(
            tmp_path,
            follow(
                client, "/reads/NA12878", format=fmt, referenceName="11", start=5000000, end=5010000
            ),
            suffix,
        )
        assert want <= got
    with pysam.VariantFile(str(data / "variants/NA20787.vcf.gz")) as fh:
        want = {f"{r.chrom}:{r.pos}" for r in fh.fetch("21", 30000000, 31000000)}
    got = names(
        tmp_path,
        follow(client, "/variants/NA20787", referenceName="21", start=30000000, end=31000000),
        ".vcf.gz",
    )
    assert len(want) == 1227 and want <= got
    header_only = follow(client, "/variants/NA20787", **{"class": "header"})
    assert names(tmp_path, header_only, ".vcf.gz") == set()


def test_data_url_for_s3_object_redirects_to_presigned_url(client, data, settings, db):
    from server.auth.urls import sign_url

    with db.session() as s:
        pk = (
            s.query(DataFile.pk)
            .filter(DataFile.object_id == "NA12878", DataFile.format == "BAM")
            .scalar()
        )
    resp = client.get(sign_url(settings, "file", str(pk)), follow_redirects=False)
    assert resp.status_code == 307
    target = resp.headers["location"]
    assert target.startswith(settings.s3_endpoint_url) and "X-Amz-Signature" in target
    got = httpx.get(target, headers={"Range": "bytes=0-3"}, timeout=30)
    assert (
        got.status_code == 206
        and got.content == (data / "reads/htsnexus_test_NA12878.bam").read_bytes()[:4]
    )
