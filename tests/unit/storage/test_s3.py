"""The S3 backend against a real S3-compatible server (moto, in this process)."""

import pytest

from server.settings import Settings
from server.storage import Stat, for_location
from server.storage.s3 import READ_AHEAD, S3Storage, parse
from tests.conftest import free_port

BUCKET = "unit"
BODY = bytes(range(256)) * (2 * READ_AHEAD // 256 + 3)  # more than two read-ahead windows


@pytest.fixture(scope="module")
def s3_settings(tmp_path_factory):
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    settings = Settings(
        var_dir=str(tmp_path_factory.mktemp("var")),
        s3_endpoint_url=f"http://127.0.0.1:{port}",
        s3_access_key="testing",
        s3_secret_key="testing",
        s3_region="us-east-1",
    )
    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="dir/obj.bin", Body=BODY)
    yield settings
    server.stop()


def test_parse_refuses_what_is_not_bucket_and_key():
    assert parse("s3://b/k/x.bam") == ("b", "k/x.bam")
    for bad in ("s3://b", "s3://b/", "s3:///k", "http://b/k"):
        with pytest.raises(ValueError):
            parse(bad)


def test_ranged_reads_and_the_reader(s3_settings):
    store = for_location(f"s3://{BUCKET}/dir/obj.bin", s3_settings)
    assert isinstance(store, S3Storage)
    assert store.read(1000, 10) == BODY[1000:1010]
    assert store.read(len(BODY) - 3, 100) == BODY[-3:]
    assert store.read(len(BODY) + 5, 10) == b""  # past the end
    assert store.read_all() == BODY
    with store.open() as fh:  # crosses read-ahead windows, seeks back
        fh.seek(READ_AHEAD - 4)
        assert fh.read(8) == BODY[READ_AHEAD - 4 : READ_AHEAD + 4]
        fh.seek(-2, 2)
        assert fh.read(10) == BODY[-2:]
        fh.seek(7)
        assert fh.read(3) == BODY[7:10]


def test_stat_asks_the_store_and_version_trusts_the_registration(s3_settings):
    location = f"s3://{BUCKET}/dir/obj.bin"
    live = for_location(location, s3_settings).stat()
    assert live.size == len(BODY) and live.mtime_ns > 0
    assert for_location(location, s3_settings).version() == live  # nothing on record
    registered = Stat(len(BODY), 1)
    store = for_location(location, s3_settings, registered=registered)
    assert store.version() == registered and store.unchanged() == registered


def test_missing_object_is_file_not_found(s3_settings):
    store = for_location(f"s3://{BUCKET}/nope.bam", s3_settings)
    with pytest.raises(FileNotFoundError):
        store.read(0, 4)
    with pytest.raises(FileNotFoundError):
        store.stat()


def test_url_is_presigned_and_never_the_node(s3_settings):
    import httpx

    store = for_location(f"s3://{BUCKET}/dir/obj.bin", s3_settings)

    def node_url():
        raise AssertionError("an object is not served by the node")

    url = store.url(300, node_url)
    assert url.startswith(s3_settings.s3_endpoint_url) and "X-Amz-Signature" in url
    # it cannot be revoked, so it lives no longer than a revoked grant may stay open
    assert "X-Amz-Expires=60&" in url + "&"
    got = httpx.get(url, headers={"Range": "bytes=4-7"}, timeout=10)
    assert got.status_code == 206 and got.content == BODY[4:8]
