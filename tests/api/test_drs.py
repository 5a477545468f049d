"""DRS 1.5 API: objects, bundles, access URLs, bulk requests, authorizations.

Real signed tokens from the development issuer; real databases (SQLite and
PostgreSQL); bytes downloaded through the signed access URLs are hashed and
compared with the advertised checksums.
"""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from server.db.tables import AuditEvent
from server.registry import add_dataset, add_files
from tests.unit.auth.nodes import module_node

BASE = "/ga4gh/drs/v1"
BAM = "reads/HG00100.chr17slice.bam"
VCF = "variants/spec-v4.3.vcf.gz"
BCF = "variants/sample1-bcbio-cancer.bcf"


def populate(db, testdata) -> None:
    add_dataset(db, "pub", access="public")
    add_dataset(db, "ctl", access="controlled", grant_value="urn:ds:ctl")
    add_dataset(db, "reg", access="registered")
    add_files(db, [testdata / VCF], "pub", object_id="spec", progress=False)
    add_files(db, [testdata / BAM], "ctl", object_id="HG00100", progress=False)
    add_files(db, [testdata / BCF], "reg", object_id="bcbio", progress=False)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def node(request, tmp_path_factory, kit, testdata):
    """One node per database kind for the whole module (these tests only read)."""
    yield from module_node(
        request,
        tmp_path_factory,
        lambda s: kit.trusting(s).with_overrides(drs_max_bulk=5),
        lambda db: populate(db, testdata),
    )


@pytest.fixture
def client(node):
    return node.client


@pytest.fixture
def db(node):
    return node.db


@pytest.fixture
def data(node, testdata):
    return testdata


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checksum(obj: dict, kind: str) -> str:
    return next(c["checksum"] for c in obj["checksums"] if c["type"] == kind)


def assert_error(resp, status: int) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["status_code"] == status and isinstance(body["msg"], str)


class TestGetObject:
    def test_public_blob_anonymous_returns_200(self, client, data):
        resp = client.get(f"{BASE}/objects/spec.vcf.gz")
        assert resp.status_code == 200, resp.text
        obj = resp.json()
        raw = (data / VCF).read_bytes()
        assert obj["id"] == "spec.vcf.gz"
        assert obj["self_uri"] == "drs://127.0.0.1/spec.vcf.gz"
        assert obj["size"] == len(raw)
        assert checksum(obj, "sha-256") == sha256(raw)
        assert checksum(obj, "md5") == hashlib.md5(raw).hexdigest()  # noqa: S324
        assert obj["access_methods"] == [{"type": "https", "access_id": "https"}]
        assert obj["created_time"].endswith("Z")

    def test_index_blob_returns_200(self, client, data):
        obj = client.get(f"{BASE}/objects/spec.vcf.gz.tbi").json()
        raw = (data / (VCF + ".tbi")).read_bytes()
        assert obj["size"] == len(raw) and checksum(obj, "sha-256") == sha256(raw)

    def test_bundle_lists_file_and_index_returns_200(self, client, data):
        obj = client.get(f"{BASE}/objects/spec.vcf.gz.bundle").json()
        assert [c["id"] for c in obj["contents"]] == ["spec.vcf.gz", "spec.vcf.gz.tbi"]
        assert obj["contents"][0]["drs_uri"] == ["drs://127.0.0.1/spec.vcf.gz"]
        parts = sorted(
            [sha256((data / VCF).read_bytes()), sha256((data / (VCF + ".tbi")).read_bytes())]
        )
        assert checksum(obj, "sha-256") == sha256("".join(parts).encode())
        assert "access_methods" not in obj

    def test_controlled_anonymous_returns_401(self, client, data):
        resp = client.get(f"{BASE}/objects/HG00100.bam")
        assert_error(resp, 401)
        assert resp.headers["www-authenticate"].startswith("Bearer")

    def test_controlled_with_grant_returns_200(self, client, data, kit):
        resp = client.get(f"{BASE}/objects/HG00100.bam", headers=auth(kit.grant("urn:ds:ctl")))
        assert resp.status_code == 200, resp.text

    def test_controlled_with_other_grant_returns_403(self, client, data, kit):
        resp = client.get(f"{BASE}/objects/HG00100.bam", headers=auth(kit.grant("ctl")))
        assert_error(resp, 403)  # the grant value is urn:ds:ctl, not the dataset id

    def test_registered_with_registered_token_returns_200(self, client, data, kit):
        assert (
            client.get(f"{BASE}/objects/bcbio.bcf", headers=auth(kit.registered())).status_code
            == 200
        )

    def test_unknown_object_returns_404(self, client, data):
        assert_error(client.get(f"{BASE}/objects/nothing.bam"), 404)
        assert_error(client.get(f"{BASE}/objects/spec.vcf.gz.bai"), 404)
        assert_error(client.get(f"{BASE}/objects/garbage"), 404)

    def test_rejected_token_on_public_object_returns_401(self, client, data, kit):
        token, _ = kit.failure_cases("x")["alg none"]
        assert_error(client.get(f"{BASE}/objects/spec.vcf.gz", headers=auth(token)), 401)


class TestPostObject:
    def test_passport_in_body_returns_200(self, client, data, kit):
        resp = client.post(
            f"{BASE}/objects/HG00100.bam", json={"passports": [kit.grant("urn:ds:ctl")]}
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["id"] == "HG00100.bam"

    def test_without_passport_returns_401(self, client, data):
        assert_error(client.post(f"{BASE}/objects/HG00100.bam", json={}), 401)

    def test_forged_passport_returns_401(self, client, data, kit):
        token, _ = kit.failure_cases("urn:ds:ctl")["same kid forged key"]
        assert_error(client.post(f"{BASE}/objects/HG00100.bam", json={"passports": [token]}), 401)

    def test_passports_not_a_list_returns_400(self, client, data):
        assert_error(client.post(f"{BASE}/objects/HG00100.bam", json={"passports": "abc"}), 400)


class TestGetAccessURL:
    @pytest.mark.parametrize(
        "drs_id,path", [("spec.vcf.gz", VCF), ("spec.vcf.gz.tbi", VCF + ".tbi")]
    )
    def test_download_matches_checksum_returns_200(self, client, data, drs_id, path):
        obj = client.get(f"{BASE}/objects/{drs_id}").json()
        resp = client.get(f"{BASE}/objects/{drs_id}/access/https")
        assert resp.status_code == 200, resp.text
        url = resp.json()["url"]
        assert url.startswith("http://127.0.0.1:8080/data/")
        got = client.get(url)
        assert got.status_code == 200
        assert sha256(got.content) == checksum(obj, "sha-256")
        assert len(got.content) == obj["size"]

    def test_controlled_download_with_grant_returns_200(self, client, data, kit):
        headers = auth(kit.grant("urn:ds:ctl"))
        obj = client.get(f"{BASE}/objects/HG00100.bam", headers=headers).json()
        url = client.get(f"{BASE}/objects/HG00100.bam/access/https", headers=headers).json()["url"]
        assert sha256(client.get(url).content) == checksum(obj, "sha-256")

    def test_access_url_is_scoped_to_its_object(self, client, data, kit):
        url = client.get(f"{BASE}/objects/spec.vcf.gz/access/https").json()["url"]
        path, _, query = url.partition("?")
        head, _, ident = path.rpartition("/")
        other = f"{head}/{int(ident) + 1}?{query}"  # same signature, another file
        assert client.get(other).status_code == 403

    def test_controlled_anonymous_returns_401(self, client, data):
        assert_error(client.get(f"{BASE}/objects/HG00100.bam/access/https"), 401)

    def test_unknown_access_id_returns_404(self, client, data):
        assert_error(client.get(f"{BASE}/objects/spec.vcf.gz/access/s3"), 404)

    def test_bundle_has_no_access_url_returns_404(self, client, data):
        assert_error(client.get(f"{BASE}/objects/spec.vcf.gz.bundle/access/https"), 404)


class TestPostAccessURL:
    def test_passport_in_body_returns_200(self, client, data, kit):
        resp = client.post(
            f"{BASE}/objects/HG00100.bam/access/https",
            json={"passports": [kit.grant("urn:ds:ctl")]},
        )
        assert resp.status_code == 200, resp.text
        assert sha256(client.get(resp.json()["url"]).content) == sha256((data / BAM).read_bytes())

    def test_passport_for_other_dataset_returns_403(self, client, data, kit):
        resp = client.post(
            f"{BASE}/objects/HG00100.bam/access/https",
            json={"passports": [kit.grant("urn:ds:other")]},
        )
        assert_error(resp, 403)


class TestGetBulkObjects:
    def test_mixed_request_reports_each_returns_200(self, client, data):
        resp = client.post(
            f"{BASE}/objects",
            json={
                "bulk_object_ids": [
                    "spec.vcf.gz",
                    "HG00100.bam",
                    "nothing.bam",
                    "spec.vcf.gz.bundle",
                ]
            },
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["summary"] == {"requested": 4, "resolved": 2, "unresolved": 2}
        assert [o["id"] for o in body["resolved_drs_object"]] == [
            "spec.vcf.gz",
            "spec.vcf.gz.bundle",
        ]
        assert body["unresolved_drs_objects"] == [
            {"error_code": 401, "object_ids": ["HG00100.bam"]},
            {"error_code": 404, "object_ids": ["nothing.bam"]},
        ]

    def test_with_passport_resolves_controlled_returns_200(self, client, data, kit):
        body = client.post(
            f"{BASE}/objects",
            json={
                "bulk_object_ids": ["HG00100.bam", "bcbio.bcf"],
                "passports": [kit.grant("urn:ds:ctl")],
            },
        ).json()
        assert [o["id"] for o in body["resolved_drs_object"]] == ["HG00100.bam"]
        assert body["unresolved_drs_objects"] == [{"error_code": 403, "object_ids": ["bcbio.bcf"]}]

    def test_over_max_bulk_returns_413(self, client, data):
        assert_error(client.post(f"{BASE}/objects", json={"bulk_object_ids": ["a.bam"] * 6}), 413)

    def test_empty_returns_400(self, client, data):
        assert_error(client.post(f"{BASE}/objects", json={"bulk_object_ids": []}), 400)

    def test_bad_token_returns_401(self, client, data, kit):
        token, _ = kit.failure_cases("x")["wrong audience"]
        assert_error(
            client.post(
                f"{BASE}/objects", json={"bulk_object_ids": ["spec.vcf.gz"]}, headers=auth(token)
            ),
            401,
        )


class TestGetBulkAccessURL:
    def test_urls_download_matching_bytes_returns_200(self, client, data, kit):
        resp = client.post(
            f"{BASE}/objects/access",
            json={
                "bulk_object_access_ids": [
                    {"bulk_object_id": "spec.vcf.gz", "bulk_access_ids": ["https"]},
                    {"bulk_object_id": "HG00100.bam", "bulk_access_ids": ["https"]},
                    {"bulk_object_id": "bcbio.bcf", "bulk_access_ids": ["https"]},
                ],
                "passports": [kit.grant("urn:ds:ctl")],
            },
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["summary"] == {"requested": 3, "resolved": 2, "unresolved": 1}
        urls = {u["drs_object_id"]: u["url"] for u in body["resolved_drs_object_access_urls"]}
        assert sha256(client.get(urls["HG00100.bam"]).content) == sha256((data / BAM).read_bytes())
        assert body["unresolved_drs_objects"] == [{"error_code": 403, "object_ids": ["bcbio.bcf"]}]

    def test_over_max_bulk_returns_413(self, client, data):
        items = [{"bulk_object_id": "spec.vcf.gz", "bulk_access_ids": ["https"]}] * 6
        assert_error(
            client.post(f"{BASE}/objects/access", json={"bulk_object_access_ids": items}), 413
        )


class TestOptionsObject:
    def test_public_needs_none_returns_200(self, client, data):
        resp = client.options(f"{BASE}/objects/spec.vcf.gz")
        assert resp.status_code == 200, resp.text
        assert resp.json()["supported_types"] == ["None"]

    def test_controlled_lists_issuers_returns_200(self, client, data, kit):
        body = client.options(f"{BASE}/objects/HG00100.bam").json()
        assert body["supported_types"] == ["BearerAuth", "PassportAuth"]
        assert body["passport_auth_issuers"] == [kit.issuer.issuer]
        assert body["bearer_auth_issuers"] == [kit.issuer.issuer]

    def test_unknown_returns_404(self, client, data):
        assert_error(client.options(f"{BASE}/objects/nothing.bam"), 404)


class TestOptionsBulkObject:
    def test_reports_each_returns_200(self, client, data):
        body = client.request(
            "OPTIONS", f"{BASE}/objects", json={"bulk_object_ids": ["spec.vcf.gz", "no.bam"]}
        ).json()
        assert body["summary"] == {"requested": 2, "resolved": 1, "unresolved": 1}


class TestGetServiceInfo:
    def test_drs_block_returns_200(self, client, data):
        info = client.get(f"{BASE}/service-info").json()
        assert info["type"]["artifact"] == "drs"
        assert info["drs"]["maxBulkRequestLength"] == 5
        assert info["drs"]["objectCount"] == 9  # 3 files, 3 indexes, 3 bundles
        sizes = sum((data / p).stat().st_size for p in (VCF, BAM, BCF))
        sizes += (data / (VCF + ".tbi")).stat().st_size + (data / (BAM + ".bai")).stat().st_size
        sizes += (data / (BCF + ".csi")).stat().st_size
        assert info["drs"]["totalObjectSize"] == sizes


class TestAudit:
    def test_decisions_are_recorded_without_tokens(self, client, data, db, kit):
        token = kit.grant("urn:ds:ctl")
        with db.session() as session:
            before = session.scalar(sa.select(sa.func.max(AuditEvent.id))) or 0
        client.get(f"{BASE}/objects/HG00100.bam")
        client.get(f"{BASE}/objects/HG00100.bam", headers=auth(token))
        with db.session() as session:
            rows = session.scalars(
                sa.select(AuditEvent)
                .where(AuditEvent.api == "drs", AuditEvent.id > before)
                .order_by(AuditEvent.id)
            ).all()
        assert [(r.outcome, r.status, r.dataset_id) for r in rows] == [
            ("denied", 401, "ctl"),
            ("granted", 200, "ctl"),
        ]
        assert rows[1].caller == f"{kit.issuer.issuer}|alice"
        assert all(token not in repr(r.query) and token[:40] not in r.caller for r in rows)
