"""One access-control model on every API, with real signed tokens.

Every hostile or insufficient token (``TokenKit.failure_cases``) gets the same
answer on htsget, DRS and WES, each in that API's own error shape; a valid
grant opens exactly its dataset. On Beacon, a rejected token is a 401 and a
valid token without the grant gets the boolean tier, never records.
"""

from __future__ import annotations

import json

import pytest

from server.registry import add_dataset, add_files
from tests.support.data import add_controlled
from tests.support.wes import run_form
from tests.unit.auth.nodes import module_node
from tests.unit.auth.tokenkit import TOKEN_FAILURES, VISA_FAILURES

GRANT = "urn:ds:ctl"
CASES = ["no token", *TOKEN_FAILURES, *VISA_FAILURES]


@pytest.fixture(scope="module")
def cases(kit):
    out = {"no token": (None, 401)}
    out.update(kit.failure_cases(GRANT))
    assert sorted(out) == sorted(CASES)
    return out


def populate(db, testdata) -> None:
    add_controlled(db, testdata, GRANT)
    add_dataset(db, "pub", access="public")
    add_files(
        db,
        [testdata / "reads/HG00100.chr17slice.cram"],
        "ctl2",
        object_id="other",
        reference=str(testdata / "reads/mpileup.ref.fa"),
        progress=False,
    )
    add_files(
        db, [testdata / "variants/spec-v4.3.vcf.gz"], "pub", object_id="pubvars", progress=False
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def node(request, tmp_path_factory, kit, testdata):
    yield from module_node(
        request, tmp_path_factory, kit.trusting, lambda db: populate(db, testdata)
    )


@pytest.fixture
def client(node):
    return node.client


def headers(token):
    return {"Authorization": f"Bearer {token}"} if token else {}


def htsget_error(resp) -> str:
    return resp.json()["htsget"]["error"]


HTSGET_ERROR = {401: "InvalidAuthentication", 403: "PermissionDenied"}


class TestHtsget:
    @pytest.mark.parametrize("case", CASES)
    @pytest.mark.parametrize("path", ["/reads/ctlreads", "/variants/ctlvars"])
    def test_failure_case_returns_its_status(self, client, cases, case, path):
        token, status = cases[case]
        resp = client.get(path, headers=headers(token))
        assert resp.status_code == status, resp.text
        assert htsget_error(resp) == HTSGET_ERROR[status]

    def test_grant_opens_exactly_its_dataset(self, client, kit):
        h = headers(kit.grant(GRANT))
        assert client.get("/reads/ctlreads", headers=h).status_code == 200
        assert client.get("/variants/ctlvars", headers=h).status_code == 200
        resp = client.get("/reads/other", params={"format": "CRAM"}, headers=h)
        assert resp.status_code == 403 and htsget_error(resp) == "PermissionDenied"

    def test_public_dataset_needs_no_token(self, client):
        assert client.get("/variants/pubvars").status_code == 200


class TestDrs:
    @pytest.mark.parametrize("case", CASES)
    def test_get_failure_case_returns_its_status(self, client, cases, case):
        token, status = cases[case]
        for path in (
            "/ga4gh/drs/v1/objects/ctlreads.bam",
            "/ga4gh/drs/v1/objects/ctlreads.bam/access/https",
        ):
            resp = client.get(path, headers=headers(token))
            assert resp.status_code == status, (path, resp.text)
            assert resp.json() == {"msg": resp.json()["msg"], "status_code": status}

    @pytest.mark.parametrize("case", [c for c in CASES if c != "no token"])
    def test_post_passport_failure_case_returns_its_status(self, client, cases, case):
        token, status = cases[case]
        resp = client.post("/ga4gh/drs/v1/objects/ctlvars.vcf.gz", json={"passports": [token]})
        assert resp.status_code == status, resp.text
        assert resp.json()["status_code"] == status

    def test_grant_opens_exactly_its_dataset(self, client, kit):
        h = headers(kit.grant(GRANT))
        assert client.get("/ga4gh/drs/v1/objects/ctlreads.bam", headers=h).status_code == 200
        assert (
            client.get("/ga4gh/drs/v1/objects/ctlvars.vcf.gz.bundle", headers=h).status_code == 200
        )
        assert client.get("/ga4gh/drs/v1/objects/other.cram", headers=h).status_code == 403


class TestWes:
    @pytest.mark.parametrize("case", CASES)
    def test_listing_runs_needs_a_valid_token(self, client, cases, case):
        token, status = cases[case]
        resp = client.get("/ga4gh/wes/v1/runs", headers=headers(token))
        # WES needs authentication, not a dataset grant: 403-cases are valid callers.
        expected = 200 if status == 403 else 401
        assert resp.status_code == expected, resp.text
        if expected == 401:
            assert resp.json()["status_code"] == 401

    def test_runs_are_private_to_their_owner(self, client, kit):
        alice, bob = headers(kit.grant(GRANT)), headers(kit.grant(GRANT, sub="bob"))
        resp = client.post(
            "/ga4gh/wes/v1/runs",
            headers=alice,
            data=run_form("wf.cwl"),
            files={
                "workflow_attachment": (
                    "wf.cwl",
                    b"cwlVersion: v1.2\nclass: Workflow\ninputs: []\noutputs: []\nsteps: []\n",
                )
            },
        )
        assert resp.status_code == 200, resp.text
        run_id = resp.json()["run_id"]
        assert client.get(f"/ga4gh/wes/v1/runs/{run_id}/status", headers=alice).status_code == 200
        assert client.get(f"/ga4gh/wes/v1/runs/{run_id}/status", headers=bob).status_code == 404
        listed = client.get("/ga4gh/wes/v1/runs", headers=bob).json()
        assert run_id not in [r["run_id"] for r in listed["runs"]]
        assert client.post(f"/ga4gh/wes/v1/runs/{run_id}/cancel", headers=bob).status_code == 404
        assert client.post(f"/ga4gh/wes/v1/runs/{run_id}/cancel", headers=alice).status_code == 200


class TestBeacon:
    QUERY = {
        "referenceName": "chrM",
        "start": "0",
        "end": "20000",
        "requestedGranularity": "record",
        "datasetIds": "ctl",
    }

    @pytest.mark.parametrize("case", CASES)
    def test_failure_case_never_gets_records(self, client, cases, case):
        token, status = cases[case]
        resp = client.get("/beacon/v2/g_variants", params=self.QUERY, headers=headers(token))
        if status == 401 and token is not None:  # a rejected token: error in Beacon's shape
            assert resp.status_code == 401, resp.text
            assert resp.json()["error"]["errorCode"] == 401
            return
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["meta"]["returnedGranularity"] == "boolean"
        # below the record tier an allele needs 5 carriers to be visible; this VCF
        # has one sample, so nothing is (the grant below sees the same variants)
        assert body["responseSummary"]["exists"] is False
        assert "numTotalResults" not in body["responseSummary"]
        assert "response" not in body or not body["response"].get("resultSets")

    def test_grant_gets_records(self, client, kit):
        resp = client.get(
            "/beacon/v2/g_variants", params=self.QUERY, headers=headers(kit.grant(GRANT))
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["meta"]["returnedGranularity"] == "record"
        assert body["responseSummary"]["numTotalResults"] > 0

    def test_registered_gets_counts_on_controlled(self, client, kit):
        body = client.get(
            "/beacon/v2/g_variants", params=self.QUERY, headers=headers(kit.registered())
        ).json()
        assert body["meta"]["returnedGranularity"] == "count"


class TestWesDrsInputs:
    """A run may read a drs:// input only with its submitter's own rights."""

    def submit(self, client, token):
        params = {"reads": {"class": "File", "location": "drs://127.0.0.1/ctlvars.vcf.gz"}}
        return client.post(
            "/ga4gh/wes/v1/runs",
            headers=headers(token),
            data=run_form("wf.cwl", params),
            files={
                "workflow_attachment": (
                    "wf.cwl",
                    b"cwlVersion: v1.2\nclass: Workflow\n"
                    b"inputs:\n  reads: File\noutputs: []\n"
                    b"steps: []\n",
                )
            },
        )

    def test_with_grant_is_accepted(self, client, kit):
        token = kit.grant(GRANT)
        resp = self.submit(client, token)
        assert resp.status_code == 200, resp.text
        run_id = resp.json()["run_id"]
        assert (
            client.post(f"/ga4gh/wes/v1/runs/{run_id}/cancel", headers=headers(token)).status_code
            == 200
        )

    def test_with_grant_the_run_reads_the_controlled_file(self, client, kit, node, testdata):
        from server.wes.worker import Worker

        token = kit.grant(GRANT)
        params = {"reads": {"class": "File", "location": "drs://127.0.0.1/ctlvars.vcf.gz"}}
        tool = (
            b"cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: [wc, -c]\n"
            b"inputs:\n  reads:\n    type: File\n    inputBinding: {position: 1}\n"
            b"stdout: count.txt\noutputs:\n  out:\n    type: stdout\n"
        )
        resp = client.post(
            "/ga4gh/wes/v1/runs",
            headers=headers(token),
            data=run_form("wc.cwl", params),
            files={"workflow_attachment": ("wc.cwl", tool)},
        )
        assert resp.status_code == 200, resp.text
        run_id = resp.json()["run_id"]
        for _ in range(8):  # earlier tests of this module queued runs too; oldest go first
            Worker(node.settings, node.db).run_forever(max_runs=1)
            log = client.get(f"/ga4gh/wes/v1/runs/{run_id}", headers=headers(token)).json()
            if log["state"] not in ("QUEUED", "INITIALIZING", "RUNNING"):
                break
        assert log["state"] == "COMPLETE", log["run_log"]
        url = log["outputs"]["out"]["location"].removeprefix(node.settings.public_url)
        size = (testdata / "variants/sample1-bcbio-cancer.vcf.gz").stat().st_size
        assert int(client.get(url).text.split()[0]) == size

    def test_without_grant_is_refused_403(self, client, kit):
        resp = self.submit(client, kit.grant("urn:ds:other"))
        assert resp.status_code == 403, resp.text
        assert resp.json()["status_code"] == 403

    def test_bad_token_is_refused_401(self, client, cases):
        token, _ = cases["same kid forged key"]
        assert self.submit(client, token).status_code == 401


class TestAuditTrail:
    """Runs after the classes above on the same node: their decisions are all on record."""

    def test_every_api_recorded_denials_and_grants_without_tokens(self, node):
        import sqlalchemy as sa

        from server.db.tables import AuditEvent

        with node.db.session() as session:
            rows = session.scalars(sa.select(AuditEvent)).all()
        seen = {(r.api, r.outcome) for r in rows}
        for api in ("htsget", "drs", "wes"):
            assert (api, "denied") in seen and (api, "granted") in seen, (api, seen)
        for r in rows:
            text = json.dumps([r.caller, r.object_id, r.dataset_id, r.query], default=str)
            assert "eyJ" not in text and "sig=" not in text, text
        assert any(
            r.caller.endswith("|alice") and r.dataset_id == "ctl" and r.outcome == "granted"
            for r in rows
        )
