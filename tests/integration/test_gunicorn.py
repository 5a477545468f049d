"""The real server: gunicorn with uvicorn workers, over both databases."""

import httpx


def test_gunicorn_serves_service_info_and_readiness(live_server, db):
    r = httpx.get(f"{live_server.url}/service-info", timeout=10)
    assert r.status_code == 200
    assert r.json()["name"] == "genomeport"
    assert httpx.get(f"{live_server.url}/health/ready", timeout=10).json()["database"] == "ok"
    # workers answer errors in the API's shape, not problem+json
    r = httpx.get(f"{live_server.url}/ga4gh/drs/v1/objects/none-such", timeout=10)
    assert r.status_code == 404 and r.json()["status_code"] == 404
    # workers start without Python warnings (e.g. a library's deprecation notice)
    assert "Warning:" not in live_server.log.read_text()


def test_logs_are_json_with_request_ids_and_no_secrets(live_server, db):
    import json

    secret = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    httpx.get(
        f"{live_server.url}/service-info?sig=topsecret",
        headers={"Authorization": f"Bearer {secret}", "X-Request-ID": "trace-42"},
        timeout=10,
    )
    import time

    deadline = time.monotonic() + 10
    while True:  # the access line is written just after the response is sent
        lines = [line for line in live_server.log.read_text().splitlines() if line.startswith("{")]
        access = [json.loads(line) for line in lines if "trace-42" in line]
        if access or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert lines, "no JSON log lines"
    assert access and access[0]["request_id"] == "trace-42"
    text = live_server.log.read_text()
    assert secret not in text and "topsecret" not in text


def test_gunicorn_serves_data_ranges_byte_for_byte_through_the_zero_copy_worker(
    live_server, db, testdata
):
    """``genomeport serve`` runs ``server.web.worker.Worker``: data bodies go out with sendfile."""
    from server.registry import add_dataset, add_files
    from server.settings import Settings
    from server.web.accel.zerocopy import ZeroCopyHttpToolsProtocol
    from server.web.serve import NodeServer
    from server.web.worker import Worker, config_kwargs

    assert NodeServer(Settings()).cfg.worker_class is Worker
    assert config_kwargs(Settings()) == {"loop": "asyncio", "http": ZeroCopyHttpToolsProtocol}
    assert config_kwargs(Settings(accel="none")) == {"loop": "asyncio", "http": "httptools"}

    bam = testdata / "reads/htsnexus_test_NA12878.bam"
    add_dataset(db, "zc", access="public")
    add_files(db, [bam], "zc", object_id="zc-na12878", progress=False)
    data = bam.read_bytes()
    with httpx.Client(timeout=30) as client:
        ticket = client.get(f"{live_server.url}/reads/zc-na12878").json()
        url = next(u["url"] for u in ticket["htsget"]["urls"] if u["url"].startswith("http"))
        for start, end in (
            (0, 0),
            (1, 65_536),
            (len(data) // 3, len(data) - 2),
            (len(data) - 1, len(data) - 1),
        ):
            r = client.get(url, headers={"Range": f"bytes={start}-{end}"})
            assert r.status_code == 206 and r.content == data[start : end + 1], (start, end)
            assert r.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
        r = client.get(url)
        assert r.status_code == 200 and r.content == data
        assert client.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416
