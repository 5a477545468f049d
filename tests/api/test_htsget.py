"""htsget 1.3 API: tickets, errors, access control and the data URLs they point to.

Tickets are followed for real: every URL is downloaded (inline data decoded),
the parts joined, and the result opened with pysam and compared with pysam on
the local file. Real signed tokens; real databases (SQLite and PostgreSQL).
"""

from __future__ import annotations

import base64
import time
import urllib.parse

import pysam
import pytest
import sqlalchemy as sa

from server.db.tables import AuditEvent
from server.registry import add_dataset, add_files
from tests.conftest import migrated, node_settings
from tests.support.data import add_formats

MEDIA = "application/vnd.ga4gh.htsget.v1.3.0+json"
NA12878 = "reads/htsnexus_test_NA12878"
SPEC = "variants/spec-v4.3"
GIAB = "variants/HG002_GIAB.filtered.vcf.gz"


# One node per database kind for the whole module: every test here only reads
# the registry, and audit checks look at the rows their own request added.
@pytest.fixture(scope="module")
def settings(module_db_url, kit, tmp_path_factory):
    var = tmp_path_factory.mktemp("htsget-var")
    return kit.trusting(node_settings(var, module_db_url, log_format="text", max_body_bytes=4096))


@pytest.fixture(scope="module")
def db(settings):
    database = migrated(settings)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def app(settings, db):
    from server.web.app import create_app

    cx = create_app(settings)
    yield cx
    cx.app.extensions["genomeport"].db.dispose()


@pytest.fixture(scope="module")
def client(app):
    with app.test_client() as c:
        yield c


@pytest.fixture(scope="module")
def data(db, testdata):
    add_dataset(db, "pub", access="public")
    add_dataset(db, "ctl", access="controlled", grant_value="urn:ds:ctl")
    add_formats(db, testdata, NA12878, (".bam", ".cram"), "pub", "htsnexus_test_NA12878")
    add_formats(db, testdata, SPEC, (".vcf.gz", ".bcf"), "pub", "spec-v4.3")
    add_files(db, [testdata / GIAB], "ctl", object_id="giab", progress=False)
    return testdata


def audit_rows(db, after: int) -> list[AuditEvent]:
    with db.session() as s:
        return list(
            s.scalars(
                sa.select(AuditEvent)
                .where(AuditEvent.api == "htsget", AuditEvent.id > after)
                .order_by(AuditEvent.id)
            )
        )


def last_audit_id(db) -> int:
    with db.session() as s:
        return s.scalar(sa.select(sa.func.coalesce(sa.func.max(AuditEvent.id), 0)))


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def assert_error(resp, status: int, error: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["htsget"]["error"] == error, body
    assert isinstance(body["htsget"]["message"], str)


def ticket(client, path: str, **kw) -> dict:
    resp = (
        client.get(path, **kw)
        if "json" not in kw and "content" not in kw
        else client.post(path, **kw)
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == MEDIA
    return resp.json()


def download(client, tk: dict) -> bytes:
    parts = []
    for entry in tk["htsget"]["urls"]:
        url = entry["url"]
        if url.startswith("data:"):
            assert url.startswith("data:;base64,")
            parts.append(base64.b64decode(url[len("data:;base64,") :]))
            continue
        resp = client.get(url, headers=entry.get("headers", {}))
        assert resp.status_code in (200, 206), resp.text
        assert int(resp.headers["content-length"]) == len(resp.content)
        parts.append(resp.content)
    return b"".join(parts)


def records(tmp_path, data: bytes, fmt: str) -> list[str]:
    path = tmp_path / f"joined.{ {'VCF': 'vcf.gz'}.get(fmt, fmt.lower()) }"
    path.write_bytes(data)
    save = pysam.set_verbosity(0)
    try:
        if fmt in ("BAM", "CRAM"):
            with pysam.AlignmentFile(str(path), check_sq=False) as fh:
                return [
                    f"{r.query_name}/{r.flag}/{r.reference_start}" for r in fh.fetch(until_eof=True)
                ]
        with pysam.VariantFile(str(path)) as fh:
            return [f"{r.chrom}:{r.pos}{r.ref}>{r.alts}" for r in fh]
    finally:
        pysam.set_verbosity(save)


def local_reads(path, *region) -> list[str]:
    with pysam.AlignmentFile(str(path)) as fh:
        return [f"{r.query_name}/{r.flag}/{r.reference_start}" for r in fh.fetch(*region)]


class TestSearchReadId:
    def test_whole_bam_returns_200(self, client, data, tmp_path):
        tk = ticket(client, "/reads/htsnexus_test_NA12878")
        assert tk["htsget"]["format"] == "BAM"
        assert tk["htsget"]["urls"][0]["class"] == "header"
        assert len(records(tmp_path, download(client, tk), "BAM")) == 39918

    def test_region_holds_every_record_returns_200(self, client, data, tmp_path):
        tk = ticket(
            client,
            "/reads/htsnexus_test_NA12878",
            params={"referenceName": "11", "start": 5000000, "end": 5010000},
        )
        got = set(records(tmp_path, download(client, tk), "BAM"))
        want = local_reads(data / (NA12878 + ".bam"), "11", 5000000, 5010000)
        assert len(want) == 878 and set(want) <= got

    def test_format_is_case_insensitive_returns_200(self, client, data, tmp_path):
        tk = ticket(
            client,
            "/reads/htsnexus_test_NA12878",
            params={"format": "cram", "referenceName": "20", "start": 6000000, "end": 6010000},
        )
        assert tk["htsget"]["format"] == "CRAM"
        got = set(records(tmp_path, download(client, tk), "CRAM"))
        assert set(local_reads(data / (NA12878 + ".bam"), "20", 6000000, 6010000)) <= got

    def test_unplaced_unmapped_returns_200(self, client, data, tmp_path):
        tk = ticket(client, "/reads/htsnexus_test_NA12878", params={"referenceName": "*"})
        got = records(tmp_path, download(client, tk), "BAM")
        assert len(got) == 39918 - 27214 - 109 - 120

    def test_header_class_returns_200(self, client, data, tmp_path):
        tk = ticket(client, "/reads/htsnexus_test_NA12878", params={"class": "header"})
        assert {u["class"] for u in tk["htsget"]["urls"]} == {"header"}
        assert records(tmp_path, download(client, tk), "BAM") == []

    def test_c4gh_for_a_plaintext_object_is_its_plaintext_returns_200(self, client, data):
        # a file the node keeps in plaintext has no Crypt4GH segments to hand out
        # (the compliance suite asks this and expects the records)
        tk = ticket(client, "/reads/htsnexus_test_NA12878", params={"encryptionScheme": "C4GH"})[
            "htsget"
        ]
        assert tk["format"] == "BAM" and tk["urls"]

    def test_unknown_params_are_ignored_returns_200(self, client, data):
        ticket(client, "/reads/htsnexus_test_NA12878", params={"x": "1", "y": ""})

    @pytest.mark.parametrize(
        "params, error",
        [
            ({"format": "VCF"}, "UnsupportedFormat"),
            ({"class": "header", "referenceName": "11"}, "InvalidInput"),
        ],
        ids=["variant-format-on-reads", "header-with-region"],
    )
    def test_refused_ticket_returns_400(self, client, data, params, error):
        resp = client.get("/reads/htsnexus_test_NA12878", params=params)
        assert_error(resp, 400, error)

    def test_start_after_end_returns_400(self, client, data):
        resp = client.get(
            "/reads/htsnexus_test_NA12878", params={"referenceName": "11", "start": 10, "end": 5}
        )
        assert_error(resp, 400, "InvalidRange")

    def test_start_without_reference_returns_400(self, client, data):
        assert_error(
            client.get("/reads/htsnexus_test_NA12878", params={"start": 10}), 400, "InvalidInput"
        )

    def test_bad_fields_and_overlapping_tags_return_400(self, client, data):
        assert_error(
            client.get("/reads/htsnexus_test_NA12878", params={"fields": "QNAME,NOPE"}),
            400,
            "InvalidInput",
        )
        assert_error(
            client.get("/reads/htsnexus_test_NA12878", params={"tags": "NM,MD", "notags": "MD"}),
            400,
            "InvalidInput",
        )
        ticket(client, "/reads/htsnexus_test_NA12878", params={"fields": "QNAME,POS", "tags": "NM"})

    def test_unknown_reference_returns_404(self, client, data):
        assert_error(
            client.get("/reads/htsnexus_test_NA12878", params={"referenceName": "chrZ"}),
            404,
            "NotFound",
        )

    def test_unknown_object_returns_404(self, client, data):
        assert_error(client.get("/reads/nothing-here"), 404, "NotFound")
        assert_error(client.get("/reads/spec-v4.3"), 404, "NotFound")


class TestSearchReadIdPost:
    def test_several_regions_one_ticket_returns_200(self, client, data, tmp_path):
        regions = [
            {"referenceName": "11", "start": 5000000, "end": 5005000},
            {"referenceName": "20", "start": 6000000, "end": 6002000},
            {"referenceName": "11", "start": 5004000, "end": 5008000},
        ]
        tk = ticket(
            client, "/reads/htsnexus_test_NA12878", json={"format": "BAM", "regions": regions}
        )
        urls = tk["htsget"]["urls"]
        assert [u["class"] for u in urls].count("header") >= 1
        assert urls[-1]["url"].startswith("data:;base64,")  # one EOF, at the end
        ranges = [u["headers"]["Range"] for u in urls if "headers" in u and u["class"] == "body"]
        starts = [int(r.split("=")[1].split("-")[0]) for r in ranges]
        assert starts == sorted(starts)
        got = set(records(tmp_path, download(client, tk), "BAM"))
        bam = data / (NA12878 + ".bam")
        for r in regions:
            assert set(local_reads(bam, r["referenceName"], r["start"], r["end"])) <= got

    def test_empty_regions_returns_400(self, client, data):
        assert_error(
            client.post("/reads/htsnexus_test_NA12878", json={"regions": []}), 400, "InvalidInput"
        )

    def test_region_without_reference_returns_400(self, client, data):
        resp = client.post(
            "/reads/htsnexus_test_NA12878", json={"regions": [{"start": 1, "end": 5}]}
        )
        assert_error(resp, 400, "InvalidInput")

    def test_start_equal_end_returns_400(self, client, data):
        resp = client.post(
            "/reads/htsnexus_test_NA12878",
            json={"regions": [{"referenceName": "11", "start": 5, "end": 5}]},
        )
        assert_error(resp, 400, "InvalidRange")

    def test_query_parameters_return_400(self, client, data):
        resp = client.post("/reads/htsnexus_test_NA12878?format=BAM", json={"format": "BAM"})
        assert_error(resp, 400, "InvalidInput")

    def test_invalid_json_returns_400(self, client, data):
        resp = client.post(
            "/reads/htsnexus_test_NA12878",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert_error(resp, 400, "InvalidInput")

    def test_oversized_body_returns_413(self, client, data):
        regions = [{"referenceName": "11", "start": i, "end": i + 1} for i in range(500)]
        resp = client.post("/reads/htsnexus_test_NA12878", json={"regions": regions})
        assert_error(resp, 413, "PayloadTooLarge")


class TestSearchVariantId:
    @pytest.mark.parametrize("fmt", ["VCF", "bcf"])
    def test_region_returns_200(self, client, data, tmp_path, fmt):
        tk = ticket(
            client,
            "/variants/spec-v4.3",
            params={"format": fmt, "referenceName": "20", "start": 14369, "end": 17331},
        )
        assert tk["htsget"]["format"] == fmt.upper()
        got = records(tmp_path, download(client, tk), fmt.upper())
        assert [g.split(":")[1][:5] for g in got] >= ["14370", "17330"]

    def test_controlled_anonymous_returns_401(self, client, data):
        resp = client.get("/variants/giab")
        assert_error(resp, 401, "InvalidAuthentication")

    def test_controlled_without_grant_returns_403(self, client, data, kit):
        resp = client.get("/variants/giab", headers=auth(kit.grant("urn:ds:other")))
        assert_error(resp, 403, "PermissionDenied")

    def test_controlled_with_grant_returns_200(self, client, data, kit, db, tmp_path):
        before = last_audit_id(db)
        tk = ticket(
            client,
            "/variants/giab",
            params={"referenceName": "1", "start": 0, "end": 50_000_000},
            headers=auth(kit.grant("urn:ds:ctl")),
        )
        assert len(records(tmp_path, download(client, tk), "VCF")) >= 176
        rows = audit_rows(db, before)
        assert [(r.object_id, r.outcome, r.status) for r in rows] == [("giab", "granted", 200)]
        assert rows[0].caller.endswith("|alice")

    def test_rejected_token_on_public_returns_401(self, client, data, kit):
        token, _ = kit.failure_cases("x")["wrong audience"]
        assert_error(
            client.get("/variants/spec-v4.3", headers=auth(token)), 401, "InvalidAuthentication"
        )

    def test_denials_are_audited(self, client, data, db):
        before = last_audit_id(db)
        client.get("/variants/giab")
        rows = audit_rows(db, before)
        assert [(r.outcome, r.status, r.dataset_id) for r in rows] == [("denied", 401, "ctl")]


class TestSearchVariantIdPost:
    def test_header_class_returns_200(self, client, data, tmp_path):
        tk = ticket(client, "/variants/spec-v4.3", json={"class": "HEADER", "format": "BCF"})
        assert records(tmp_path, download(client, tk), "BCF") == []


class TestServiceInfo:
    @pytest.mark.parametrize(
        "endpoint,formats", [("reads", ["BAM", "CRAM"]), ("variants", ["VCF", "BCF"])]
    )
    def test_service_info_returns_200(self, client, endpoint, formats):
        resp = client.get(f"/{endpoint}/service-info")
        assert resp.status_code == 200
        body = resp.json()
        assert body["type"] == {"group": "org.ga4gh", "artifact": "htsget", "version": "1.3.0"}
        assert body["htsget"]["datatype"] == endpoint and body["htsget"]["formats"] == formats
        assert body["htsget"]["fieldsParametersEffective"] is False


class TestDataUrl:
    def _url(self, client) -> tuple[str, int]:
        tk = ticket(client, "/reads/htsnexus_test_NA12878", params={"class": "header"})
        entry = next(u for u in tk["htsget"]["urls"] if u["url"].startswith("http"))
        return entry["url"], 2596799

    def test_range_returns_206(self, client, data):
        url, size = self._url(client)
        raw = (data / (NA12878 + ".bam")).read_bytes()
        resp = client.get(url, headers={"Range": "bytes=10-19"})
        assert resp.status_code == 206
        assert resp.headers["content-range"] == f"bytes 10-19/{size}"
        assert resp.headers["content-length"] == "10" and resp.content == raw[10:20]
        resp = client.get(url, headers={"Range": "bytes=-5"})
        assert resp.status_code == 206 and resp.content == raw[-5:]
        full = client.get(url)
        assert full.status_code == 200 and full.content == raw

    def test_range_past_end_returns_416(self, client, data):
        url, size = self._url(client)
        resp = client.get(url, headers={"Range": f"bytes={size}-"})
        assert resp.status_code == 416
        assert resp.headers["content-range"] == f"bytes */{size}"

    def test_tampered_or_expired_signature_returns_403(self, client, data, settings):
        from server.auth.urls import sign_url

        url, _ = self._url(client)
        parts = urllib.parse.urlsplit(url)
        q = dict(urllib.parse.parse_qsl(parts.query))
        q["exp"] = str(int(q["exp"]) + 1000)
        assert_error(
            client.get(parts._replace(query=urllib.parse.urlencode(q)).geturl()),
            403,
            "PermissionDenied",
        )
        other = parts._replace(path=parts.path.rsplit("/", 1)[0] + "/999")
        assert_error(client.get(other.geturl()), 403, "PermissionDenied")
        expired = sign_url(settings, "file", parts.path.rsplit("/", 1)[1], ttl=-1)
        assert_error(client.get(expired), 403, "PermissionDenied")
        assert_error(client.get(parts.path), 403, "PermissionDenied")

    def test_head_and_preflight_return_cors(self, client, data):
        url, size = self._url(client)
        head = client.head(url)
        assert head.status_code == 200 and head.headers["content-length"] == str(size)
        assert head.content == b""
        pre = client.options(
            url,
            headers={
                "Origin": "https://igv.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "range",
            },
        )
        assert pre.status_code in (200, 204)
        assert pre.headers["access-control-allow-origin"] in ("*", "https://igv.example")
        assert "range" in pre.headers["access-control-allow-headers"].lower()
        got = client.get(url, headers={"Origin": "https://igv.example", "Range": "bytes=0-1"})
        assert got.headers["access-control-allow-origin"] in ("*", "https://igv.example")
        assert "Content-Range" in got.headers["access-control-expose-headers"]

    def test_ticket_cors_preflight_returns_200(self, client, data):
        pre = client.options(
            "/reads/htsnexus_test_NA12878",
            headers={
                "Origin": "https://igv.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,authorization",
            },
        )
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] in ("*", "https://igv.example")

    def test_signed_url_never_reaches_logs(self, client, data, caplog):
        url, _ = self._url(client)
        with caplog.at_level("DEBUG"):
            client.get(url, headers={"Range": "bytes=0-1"})
            client.get(url + "x", headers={"Range": "bytes=0-1"})  # a rejected one too
        sig = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["sig"]
        server_logs = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
        assert server_logs and not any(sig in m for m in server_logs)
        assert time.time() < int(
            dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["exp"]
        )
