"""A database outage under a running node: 503 with Retry-After, then recovery.

A throwaway PostgreSQL cluster of the test's own (``scripts/pg-throwaway.sh``,
never the machine's shared server) backs a real two-worker gunicorn node. The
cluster is stopped mid-test: htsget, DRS, Beacon, WES and ``/health/ready``
must each answer 503 with ``Retry-After`` in their own error shape, never 500.
The cluster is started again and the node must serve every API again without
a restart.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, migrated, node_settings, start_server, stop_server
from tests.support.postgres import throwaway_cluster

SEED = REPO / "seed_data"


@pytest.fixture
def cluster():
    """``(url, stop, start)`` of a PostgreSQL cluster on a free port, removed afterwards."""
    with throwaway_cluster(required=False) as c:
        yield c.url, c.stop, c.start


@pytest.fixture
def node(cluster, tmp_path):
    from server.registry import add_dataset, add_files
    from tests.unit.auth.tokenkit import make_kit

    url, stop, start = cluster
    kit = make_kit(tmp_path / "kit")
    settings = kit.trusting(node_settings(tmp_path / "var", url, beacon_rate_per_minute=0))
    db = migrated(settings)
    add_dataset(db, "demo", access="public", assembly="GPDEMO1")
    add_files(db, [SEED / "DK0001.bam", SEED / "cohort.vcf.gz"], "demo", progress=False)
    db.dispose()
    server = start_server(settings)
    try:
        yield server, {"Authorization": f"Bearer {kit.registered()}"}, stop, start
    finally:
        stop_server(server)


def _requests(server, auth) -> dict[str, tuple[str, str, dict]]:
    """api -> (method, url, extra) for a request of each API that needs the database."""
    return {
        "htsget": ("GET", f"{server.url}/reads/DK0001?referenceName=chr1&start=0&end=100", {}),
        "drs": ("GET", f"{server.url}/ga4gh/drs/v1/objects/DK0001.bam", {}),
        "beacon": ("GET", f"{server.url}/beacon/v2/datasets", {}),
        "wes": ("GET", f"{server.url}/ga4gh/wes/v1/runs", {"headers": auth}),
        "ready": ("GET", f"{server.url}/health/ready", {}),
    }


def _assert_unavailable(api: str, response: httpx.Response) -> None:
    assert response.status_code == 503, f"{api}: {response.status_code} {response.text[:300]}"
    assert int(response.headers["retry-after"]) > 0, api
    body = response.json()
    if api == "htsget":
        assert body == {
            "htsget": {"error": "ServiceUnavailable", "message": body["htsget"]["message"]}
        }
    elif api in ("drs", "wes"):
        assert body["status_code"] == 503 and body["msg"]
    elif api == "beacon":
        assert body["error"]["errorCode"] == 503, body
        assert body["meta"]["beaconId"]
    else:
        assert body["status"] == "unavailable" and body["database"] == "unreachable"


def test_outage_is_503_with_retry_after_and_the_node_recovers(node):
    server, auth, stop, start = node
    requests = _requests(server, auth)
    with httpx.Client(timeout=30) as client:
        for api, (method, url, extra) in requests.items():
            r = client.request(method, url, **extra)
            assert r.status_code == 200, f"{api} before the outage: {r.status_code} {r.text[:300]}"

        stop()
        # Each API several times, so that both workers and their pooled
        # (now dead) connections are exercised.
        for _ in range(3):
            for api, (method, url, extra) in requests.items():
                _assert_unavailable(api, client.request(method, url, **extra))

        start()
        deadline = time.monotonic() + 60
        while client.get(f"{server.url}/health/ready").status_code != 200:
            assert time.monotonic() < deadline, (
                "node did not become ready after the database returned"
            )
            time.sleep(0.5)
        for _ in range(3):
            for api, (method, url, extra) in requests.items():
                r = client.request(method, url, **extra)
                assert r.status_code == 200, f"{api} after recovery: {r.status_code} {r.text[:300]}"

    # Nothing was an unhandled error: every failure was classified as the outage it was.
    errors = [
        record
        for record in _records(server.log)
        if record.get("level") == "ERROR" and not record.get("logger", "").startswith("sqlalchemy")
    ]
    assert not errors, errors[:3]
    assert any("-> 503" in record.get("message", "") for record in _records(server.log))


def _records(log: Path) -> list[dict]:
    out = []
    for line in log.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # gunicorn's own lines are plain text
            continue
    return out
