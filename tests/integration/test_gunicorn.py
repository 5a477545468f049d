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


def test_logs_are_json_with_request_ids_and_no_secrets(live_server, db):
    import json

    secret = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    httpx.get(f"{live_server.url}/service-info?sig=topsecret", headers={"Authorization": f"Bearer {secret}",
              "X-Request-ID": "trace-42"}, timeout=10)
    import time

    deadline = time.monotonic() + 10
    while True:  # the access line is written just after the response is sent
        lines = [l for l in live_server.log.read_text().splitlines() if l.startswith("{")]
        access = [json.loads(l) for l in lines if "trace-42" in l]
        if access or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert lines, "no JSON log lines"
    assert access and access[0]["request_id"] == "trace-42"
    text = live_server.log.read_text()
    assert secret not in text and "topsecret" not in text
