"""Malformed input is a 4xx in each API's own error shape, never a 500.

Each attack is also sent to a node with the protection switched off
(Connexion's stock body validators, no control-character check, no
outage classification) to show that the same request then ends in a 500.
"""

from __future__ import annotations

import json

import pytest
import yaml

from server.registry import add_dataset, add_files
from tests.conftest import REPO, free_port, node_settings
from tests.unit.auth.nodes import module_node

SEED = REPO / "seed_data"
JSON_HEADERS = {"content-type": "application/json"}


def populate(db) -> None:
    add_dataset(db, "demo", access="public", assembly="GPDEMO1")
    add_files(db, [SEED / "DK0001.bam", SEED / "cohort.vcf.gz"], "demo", progress=False)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def node(request, tmp_path_factory):
    yield from module_node(
        request, tmp_path_factory, lambda s: s.with_overrides(beacon_rate_per_minute=0), populate
    )


@pytest.fixture
def client(node):
    return node.client


def assert_shape(api: str, response, status: int = 400) -> None:
    """The error body of ``api`` (htsget, drs, wes, node, beacon) with ``status``."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    if api == "htsget":
        assert set(body) == {"htsget"} and set(body["htsget"]) == {"error", "message"}
        assert body["htsget"]["error"] == (
            "InvalidInput" if status == 400 else body["htsget"]["error"]
        )
    elif api == "beacon":
        assert body["error"]["errorCode"] == status and body["error"]["errorMessage"]
        assert body["meta"]["beaconId"]
    else:
        assert body == {"msg": body["msg"], "status_code": status} and body["msg"]


# ---------------------------------------------------------------- bodies
JSON_POSTS = [
    ("htsget", "/reads/DK0001"),
    ("htsget", "/variants/cohort"),
    ("drs", "/ga4gh/drs/v1/objects/DK0001.bam"),
    ("drs", "/ga4gh/drs/v1/objects"),
    ("beacon", "/beacon/v2/g_variants"),
    ("beacon", "/beacon/v2/individuals"),
]
BAD_JSON = {
    "not utf-8": b'{"format": "\xff\xfe"}',
    "lone continuation byte": b"\x80",
    "utf-8 cut mid character": '{"a": "\u00e9'.encode()[:-1],
    "nested 100000 deep": b"[" * 100_000 + b"]" * 100_000,
    "nested 40 deep": b'{"a": ' * 40 + b"1" + b"}" * 40,
    "integer above int64": b'{"start": 9223372036854775808}',
    "integer below int64": b'{"start": -9223372036854775809}',
    "5000-digit integer": b'{"start": ' + b"9" * 5000 + b"}",
    "NaN": b'{"start": NaN}',
    "number overflowing to infinity": b'{"start": 1e400}',
    # PostgreSQL stores no NUL in text or JSONB: the audit row alone would fail
    "NUL in a string": b'{"format": "BAM", "regions": [{"referenceName": "chr1\\u0000"}]}',
    "NUL in a key": b'{"a\\u0000": 1}',
}


@pytest.mark.parametrize("api,path", JSON_POSTS, ids=[p for _, p in JSON_POSTS])
@pytest.mark.parametrize("name", list(BAD_JSON))
def test_malformed_json_body_returns_400(client, api, path, name):
    assert_shape(api, client.post(path, content=BAD_JSON[name], headers=JSON_HEADERS))


def test_int64_edges_are_accepted(client):
    # the largest int64 is a well-formed request: an empty or out-of-range slice,
    # not a 400 for JSON
    r = client.post(
        "/reads/DK0001",
        content=b'{"format": "BAM", "regions": '
        b'[{"referenceName": "chr1", "start": 0, "end": 9223372036854775807}]}',
        headers=JSON_HEADERS,
    )
    assert "outside the signed 64-bit range" not in r.text


BIG = "99999999999999999999"  # outside the signed 64-bit range
BAD_QUERIES = {
    "htsget end outside int64": ("htsget", f"/reads/DK0001?referenceName=chr1&start=0&end={BIG}"),
    "beacon start outside int64": (
        "beacon",
        f"/beacon/v2/g_variants?referenceName=1&start={BIG}&end=5",
    ),
    "beacon limit outside int64": ("beacon", f"/beacon/v2/individuals?limit={BIG}"),
    "htsget NUL": ("htsget", "/reads/DK0001?referenceName=chr1%00"),
    "beacon NUL": ("beacon", "/beacon/v2/g_variants?referenceName=%00&start=1&end=2"),
    "drs NUL": ("drs", "/ga4gh/drs/v1/objects/DK0001.bam?expand=%00"),
}


@pytest.mark.parametrize("name", list(BAD_QUERIES))
def test_integer_outside_int64_or_nul_in_the_query_returns_400(client, name):
    api, url = BAD_QUERIES[name]
    assert_shape(api, client.get(url))


WES_RUNS = "/ga4gh/wes/v1/runs"
BAD_MULTIPART = {
    "no boundary": (
        "multipart/form-data",
        b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--",
    ),
    "empty boundary": ("multipart/form-data; boundary=", b"----\r\n"),
    "garbage part": ("multipart/form-data; boundary=d65", b"--d65\r\n3.7e+16--d65--\r\n"),
    "header without colon": (
        "multipart/form-data; boundary=b",
        b"--b\r\nContent-Disposition form-data\r\n\r\nx\r\n--b--\r\n",
    ),
}


@pytest.mark.parametrize("name", list(BAD_MULTIPART))
def test_malformed_multipart_to_wes_returns_400(client, name):
    content_type, body = BAD_MULTIPART[name]
    r = client.post(WES_RUNS, content=body, headers={"content-type": content_type})
    assert_shape("wes", r)


@pytest.mark.parametrize("value", ['{"x": "a\\u0000"}', "a\x00b"])
def test_nul_in_a_wes_form_field_returns_400(client, value):
    r = client.post(
        WES_RUNS, files={"workflow_params": (None, value), "workflow_type": (None, "CWL")}
    )
    assert_shape("wes", r)
    assert "NUL" in r.json()["msg"]


def test_form_urlencoded_to_wes_returns_415(client):
    r = client.post(
        WES_RUNS, content=b"a=%ff", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert_shape("wes", r, 415)


# ---------------------------------------------------------------- paths
PATH_TARGETS = [
    ("htsget", "/reads/DK{c}0001"),
    ("htsget", "/variants/x{c}"),
    ("drs", "/ga4gh/drs/v1/objects/DK0001{c}.bam"),
    ("drs", "/ga4gh/drs/v1/objects/a{c}/access/b"),
    ("wes", "/ga4gh/wes/v1/runs/r{c}"),
    ("wes", "/ga4gh/wes/v1/runs/p/tasks/t{c}"),
    ("beacon", "/beacon/v2/individuals/i{c}"),
    ("node", "/services/s{c}"),
]


@pytest.mark.parametrize("api,template", PATH_TARGETS, ids=[t for _, t in PATH_TARGETS])
@pytest.mark.parametrize("char", ["%0A", "%0D", "%00", "%09", "%1B", "%7F"])
def test_control_character_in_path_returns_400(client, api, template, char):
    assert_shape(api, client.get(template.format(c=char)))


# ---------------------------------------------------------------- documents
@pytest.mark.parametrize(
    "document,path",
    [
        ("drs.yaml", "/ga4gh/drs/v1/openapi.json"),
        ("wes.yaml", "/ga4gh/wes/v1/openapi.json"),
        ("beacon.yaml", "/beacon/v2/openapi.json"),
        ("htsget.yaml", "/openapi.json"),
    ],
)
def test_openapi_document_is_served_as_written_returns_200(client, document, path):
    r = client.get(path)
    assert r.status_code == 200, r.text[:300]
    served = r.json()
    written = yaml.safe_load((REPO / "openapi" / document).read_text())
    assert served["servers"] == [{"url": path.rsplit("/openapi.json", 1)[0] or "/"}]
    served.pop("servers")
    written.pop("servers", None)
    assert served == json.loads(json.dumps(written, default=str))


def test_recursive_drs_schema_keeps_its_ref(client):
    contents = client.get("/ga4gh/drs/v1/openapi.json").json()["components"]["schemas"][
        "ContentsObject"
    ]
    assert contents["properties"]["contents"]["items"] == {
        "$ref": "#/components/schemas/ContentsObject"
    }


# ---------------------------------------------------------------- protection off
@pytest.fixture
def unprotected(tmp_path, monkeypatch):
    """Build a node (SQLite) with one protection switched off; returns its client."""
    from server.web.app import create_app

    clients = []

    def build(switch_off):
        switch_off(monkeypatch)
        settings = node_settings(tmp_path / "var", f"sqlite:///{tmp_path}/g.db", log_format="text")
        cx = create_app(settings)
        populate(cx.app.extensions["genomeport"].db)
        client = cx.test_client(raise_server_exceptions=False)
        client.__enter__()
        clients.append((client, cx))
        return client

    yield build
    for client, cx in clients:
        client.__exit__(None, None, None)
        cx.app.extensions["genomeport"].db.dispose()


def _stock_validators(monkeypatch):
    from connexion.validators import VALIDATOR_MAP as stock

    import server.web.validation as validation

    monkeypatch.setattr(
        validation,
        "VALIDATOR_MAP",
        {**stock, "parameter": validation.Int64ParameterValidator},
    )


def _no_control_check(monkeypatch):
    import re

    import server.web.ops as asgi

    monkeypatch.setattr(asgi, "_CONTROL", re.compile(r"(?!)"))


def test_without_the_guards_the_same_attacks_are_500(unprotected):
    client = unprotected(_stock_validators)
    assert (
        client.post(
            "/ga4gh/drs/v1/objects/DK0001.bam",
            content=BAD_JSON["nested 100000 deep"],
            headers=JSON_HEADERS,
        ).status_code
        == 500
    )
    assert (
        client.post(
            WES_RUNS,
            content=BAD_MULTIPART["no boundary"][1],
            headers={"content-type": "multipart/form-data"},
        ).status_code
        == 500
    )


def test_without_the_path_check_a_newline_is_500(unprotected):
    client = unprotected(_no_control_check)
    assert client.get("/ga4gh/drs/v1/objects/DK0001%0A.bam").status_code == 500


# ---------------------------------------------------------------- database unavailable
OUTAGE_REQUESTS = [
    ("htsget", "/reads/DK0001"),
    ("drs", "/ga4gh/drs/v1/objects/DK0001.bam"),
    ("beacon", "/beacon/v2/datasets"),
    ("wes", "/ga4gh/wes/v1/service-info"),
]


@pytest.fixture
def dead_database_client(tmp_path):
    """A node whose PostgreSQL server does not exist (nothing listens on its port)."""
    from server.web.app import create_app

    url = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    settings = node_settings(tmp_path / "var", url, log_format="text")
    cx = create_app(settings, migrate=False)
    with cx.test_client(raise_server_exceptions=False) as client:
        yield client
    cx.app.extensions["genomeport"].db.dispose()


@pytest.mark.parametrize("api,path", OUTAGE_REQUESTS, ids=[p for _, p in OUTAGE_REQUESTS])
def test_unreachable_database_returns_503_with_retry_after(dead_database_client, api, path):
    r = dead_database_client.get(path)
    assert_shape(api, r, 503)
    assert int(r.headers["retry-after"]) > 0


def test_unreachable_database_readiness_returns_503(dead_database_client):
    r = dead_database_client.get("/health/ready")
    assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
    assert r.json() == {"status": "unavailable", "database": "unreachable"}


def test_without_outage_classification_it_is_500(dead_database_client, monkeypatch):
    import server.web.errors as routing

    monkeypatch.setattr(routing, "database_unavailable", lambda exc: False)
    assert dead_database_client.get("/ga4gh/drs/v1/objects/DK0001.bam").status_code == 500
