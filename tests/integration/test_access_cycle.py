"""Data access management against a real node: gunicorn with 2 workers,
SQLite and PostgreSQL, tokens from the development issuer.

A researcher with a registered-access passport and no grant is refused the
controlled dataset's htsget ticket and DRS object and gets no Beacon records;
applies; cannot decide the application; a DAC member of another dataset
cannot see or decide it; the dataset's DAC approves; the researcher's same
token opens all three; ``/access/visas`` returns a visa that verifies against
``/access/jwks.json``; a revocation closes all three, and the signed URLs
handed out before it, within the configured cache bound (2 s here; at most
60 s). Rejection, return for changes, expiry and the audit trail of every
step are tested on the same node.
"""

from __future__ import annotations

import json
import time

import pysam
import pytest
import requests
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import KeySet

from server.auth.issuer import LocalIssuer
from tests.conftest import fresh_database, migrated, node_settings, start_server, stop_server
from tests.support.data import add_controlled

pytestmark = pytest.mark.slow

AUDIENCE = "https://genomeport.test"
CACHE_SECONDS = 2
DUO_TERMS = ["DUO:0000007", "DUO:0000019"]  # disease-specific research; publication required
PORTS = {"sqlite": 18160, "postgresql": 18162}
BEACON = {
    "referenceName": "chrM",
    "start": "0",
    "end": "20000",
    "requestedGranularity": "record",
    "datasetIds": "ctl",
}
APPLICATION = {
    "dataset": "ctl",
    "title": "Mitochondrial variants in cardiomyopathy",
    "purpose": ["DUO:0000007"],
    "institution": "Aarhus University",
    "accepted_terms": DUO_TERMS,
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def node(request, tmp_path_factory, testdata):
    from server.auth.access import set_terms
    from server.auth.roles import add_role

    if request.param == "postgresql":
        request.getfixturevalue("pg_available")
    var = tmp_path_factory.mktemp(f"access-{request.param}")
    issuer = LocalIssuer(var / "issuer", "http://127.0.0.1:18161")
    with fresh_database(request.param, var) as url:
        settings = node_settings(
            var / "var",
            url,
            auth_issuers=(issuer.settings_entry("jwks"),),
            auth_audience=AUDIENCE,
            access_cache_seconds=CACHE_SECONDS,
        )
        db = migrated(settings)
        add_controlled(db, testdata, "urn:ds:ctl")
        set_terms(db, "ctl", DUO_TERMS, "Disease-specific research; results must be published.")
        add_role(db, "ctl", "dac", "dac1")
        add_role(db, "ctl", "dac", "dac-researcher")  # a DAC member who also applies
        add_role(db, "ctl2", "dac", "dac2")
        server = start_server(settings, port=PORTS[request.param])
        try:
            yield Node(server.url, settings, db, issuer, testdata)
        finally:
            stop_server(server)
            db.dispose()


class Node:
    def __init__(self, url, settings, db, issuer, testdata):
        self.url, self.settings, self.db, self.issuer = url, settings, db, issuer
        self.testdata = testdata

    def token(self, sub: str) -> str:
        """A GA4GH Passport with the registered-access visas, and no grant."""
        return self.issuer.passport(sub, self.issuer.registered_visas(sub), audience=AUDIENCE)

    def get(self, path, token=None, **kw):
        return requests.get(self.url + path, headers=_auth(token), timeout=30, **kw)

    def post(self, path, token=None, **kw):
        return requests.post(self.url + path, headers=_auth(token), timeout=30, **kw)

    def apply(self, token, **changes):
        resp = self.post("/access/applications", token, json=APPLICATION | changes)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def decide(self, token, app_id, decision, **kw):
        return self.post(
            f"/access/applications/{app_id}/decision", token, json={"decision": decision} | kw
        )

    def audit(self, *, api="access"):
        from server.db.tables import AuditEvent

        with self.db.session() as s:
            return s.scalars(
                sa.select(AuditEvent).where(AuditEvent.api == api).order_by(AuditEvent.id)
            ).all()


def _auth(token):
    return {"Authorization": f"Bearer {token}"} if token else {}


# ----------------------------------------------------------- three APIs
def htsget_ticket(node, token):
    return node.get("/reads/ctlreads", token, params={"referenceName": "17"})


def drs_access(node, token):
    return node.get("/ga4gh/drs/v1/objects/ctlreads.bam/access/https", token)


def beacon_granularity(node, token) -> str:
    resp = node.get("/beacon/v2/g_variants", token, params=BEACON)
    assert resp.status_code == 200, resp.text
    return resp.json()["meta"]["returnedGranularity"]


WORKFLOW = b"cwlVersion: v1.2\nclass: Workflow\ninputs:\n  reads: File\noutputs: []\nsteps: []\n"


def wes_submit(node, token):
    """A WES run whose input is the controlled VCF, as a drs:// object of this node."""
    host = requests.utils.urlparse(node.url).hostname
    params = {"reads": {"class": "File", "location": f"drs://{host}/ctlvars.vcf.gz"}}
    return requests.post(
        node.url + "/ga4gh/wes/v1/runs",
        headers=_auth(token),
        data={
            "workflow_type": "CWL",
            "workflow_type_version": "v1.2",
            "workflow_url": "wf.cwl",
            "workflow_params": json.dumps(params),
        },
        files={"workflow_attachment": ("wf.cwl", WORKFLOW)},
        timeout=60,
    )


def joined_reads(node, ticket: dict, tmp_path) -> int:
    """Fetch a ticket's blocks, join them and count the records with pysam."""
    import base64

    parts = []
    for block in ticket["htsget"]["urls"]:
        url = block["url"]
        if url.startswith("data:"):
            parts.append(base64.b64decode(url.split(",", 1)[1]))
        else:
            resp = requests.get(url, headers=block.get("headers", {}), timeout=30)
            assert resp.status_code in (200, 206), resp.text
            parts.append(resp.content)
    path = tmp_path / "joined.bam"
    path.write_bytes(b"".join(parts))
    with pysam.AlignmentFile(str(path), "rb") as fh:
        return sum(1 for _ in fh.fetch(until_eof=True))


def data_urls(ticket: dict) -> list[str]:
    return [b["url"] for b in ticket["htsget"]["urls"] if b["url"].startswith("http")]


def wait_closed(check, bound: float) -> float:
    """Seconds until ``check()`` holds, polling; fail after ``bound`` seconds."""
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        assert time.monotonic() - started < bound, "still open after the bound"
        time.sleep(0.2)


# ----------------------------------------------------------- the cycle
def test_apply_approve_open_visa_revoke_close(node, tmp_path):
    researcher = node.token("researcher")
    # no grant: 403 on htsget and DRS, no Beacon records (count tier)
    assert htsget_ticket(node, researcher).status_code == 403
    assert drs_access(node, researcher).status_code == 403
    assert node.get("/ga4gh/drs/v1/objects/ctlreads.bam", researcher).status_code == 403
    assert beacon_granularity(node, researcher) == "count"
    assert wes_submit(node, researcher).status_code == 403

    # the data-use conditions are shown and must be accepted
    shown = node.get("/access/datasets").json()["datasets"]
    assert {k: shown[0][k] for k in ("id", "duo")} == {"id": "ctl", "duo": DUO_TERMS}
    missing = node.post(
        "/access/applications", researcher, json=APPLICATION | {"accepted_terms": DUO_TERMS[:1]}
    )
    assert missing.status_code == 400 and "DUO:0000019" in missing.json()["msg"]
    assert node.post("/access/applications", json=APPLICATION).status_code == 401

    app = node.apply(researcher)
    assert app["state"] == "submitted" and app["accepted_terms"] == DUO_TERMS

    # nobody decides their own application: the applicant, nor a DAC member applying
    own = node.decide(researcher, app["id"], "approve", expires_in_days=30)
    assert own.status_code == 403, own.text
    insider = node.token("dac-researcher")
    insider_app = node.apply(insider)
    own_dac = node.decide(insider, insider_app["id"], "approve", expires_in_days=30)
    assert own_dac.status_code == 403 and "own" in own_dac.json()["msg"]

    # a DAC member of another dataset neither sees nor decides it
    dac2 = node.token("dac2")
    assert node.get(f"/access/applications/{app['id']}", dac2).status_code == 404
    listed = node.get("/access/applications", dac2).json()["applications"]
    assert app["id"] not in [a["id"] for a in listed]
    assert node.decide(dac2, app["id"], "approve", expires_in_days=30).status_code == 404
    assert node.get("/access/grants", dac2, params={"dataset": "ctl"}).status_code == 403

    # the DAC approves
    dac1 = node.token("dac1")
    seen = node.get("/access/applications", dac1, params={"state": "submitted"}).json()
    assert app["id"] in [a["id"] for a in seen["applications"]]
    approved = node.decide(dac1, app["id"], "approve", expires_in_days=30, comment="fine")
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved"
    grant = approved.json()["grant"]
    assert grant["state"] == "active" and grant["duo"] == DUO_TERMS
    again = node.decide(dac1, app["id"], "reject", comment="changed my mind")
    assert again.status_code == 409

    # the same token opens all three, on every worker once a "no grant" it
    # cached before the approval has expired (the cache bound)
    time.sleep(CACHE_SECONDS + 0.5)
    for _ in range(4):  # both workers
        assert htsget_ticket(node, researcher).status_code == 200
    ticket = htsget_ticket(node, researcher).json()
    bam = node.testdata / "reads/HG00100.chr17slice.bam"
    with pysam.AlignmentFile(str(bam)) as fh:
        expected = fh.count("17")
    assert joined_reads(node, ticket, tmp_path) == expected
    drs = drs_access(node, researcher)
    assert drs.status_code == 200, drs.text
    drs_url = drs.json()["url"]
    assert requests.get(drs_url, headers={"Range": "bytes=0-99"}, timeout=30).status_code == 206
    assert beacon_granularity(node, researcher) == "record"
    run = wes_submit(node, researcher)
    assert run.status_code == 200, run.text
    cancel = node.post(f"/ga4gh/wes/v1/runs/{run.json()['run_id']}/cancel", researcher)
    assert cancel.status_code == 200
    # another dataset stays closed
    assert (
        node.get("/ga4gh/drs/v1/objects/ctlvars.vcf.gz", node.token("someone")).status_code == 403
    )

    # the node's visa verifies against its published JWKS
    visas = node.get("/access/visas", researcher).json()["ga4gh_passport_v1"]
    assert len(visas) == 1
    keys = KeySet.import_key_set(node.get("/access/jwks.json").json())
    decoded = jwt.decode(visas[0], keys, algorithms=["RS256"])
    assert decoded.header["jku"] == node.url + "/access/jwks.json"
    assert decoded.header["typ"] == "vnd.ga4gh.visa+jwt"
    claims = decoded.claims
    assert claims["iss"] == node.url and claims["sub"] == "researcher"
    assert claims["exp"] > time.time() and claims["duo"] == DUO_TERMS
    visa = claims["ga4gh_visa_v1"]
    assert visa["type"] == "ControlledAccessGrants" and visa["by"] == "dac"
    assert visa["value"] == "urn:ds:ctl" and visa["asserted"] <= time.time()
    # another node that trusts this node's JWKS accepts the visa inside a passport
    from server.auth.tokens import Validator
    from server.settings import Settings

    other = Settings(
        auth_issuers=(
            node.issuer.settings_entry("jwks"),
            {"issuer": node.url, "jwks": node.get("/access/jwks.json").json()},
        ),
        auth_audience="https://other-node.test",
    )
    passport = node.issuer.passport("researcher", visas, audience="https://other-node.test")
    assert "urn:ds:ctl" in Validator(other).caller_for_token(passport).controlled
    forged = visas[0][:-8] + ("A" * 8 if not visas[0].endswith("A" * 8) else "B" * 8)
    passport = node.issuer.passport("researcher", [forged], audience="https://other-node.test")
    assert Validator(other).caller_for_token(passport).controlled == frozenset()
    openapi = node.get("/access/openapi.json").json()
    assert "/jwks.json" in openapi["paths"] and "/visas" in openapi["paths"]
    assert node.get("/access/visas", dac2).json() == {"ga4gh_passport_v1": []}

    # revocation closes all three and the URLs handed out before it
    handed_out = data_urls(ticket) + [drs_url]
    assert all(requests.get(u, timeout=30).status_code in (200, 206) for u in handed_out)
    revoked_at = time.monotonic()
    revoked = node.post(f"/access/grants/{grant['id']}/revoke", dac1, json={"comment": "misuse"})
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"

    def closed() -> bool:
        return (
            htsget_ticket(node, researcher).status_code == 403
            and drs_access(node, researcher).status_code == 403
            and beacon_granularity(node, researcher) == "count"
            and all(requests.get(u, timeout=30).status_code == 403 for u in handed_out)
        )

    elapsed = wait_closed(closed, CACHE_SECONDS + 10)
    print(f"revocation: first seen closed everywhere after {elapsed:.1f} s")
    # the first closed round may have met only one worker; by the cache bound
    # after the revocation every worker has dropped what it cached before it
    time.sleep(max(0.0, revoked_at + CACHE_SECONDS + 0.5 - time.monotonic()))
    for _ in range(6):
        assert closed()
    assert wes_submit(node, researcher).status_code == 403
    assert node.get("/access/visas", researcher).json() == {"ga4gh_passport_v1": []}
    assert node.post(f"/access/grants/{grant['id']}/revoke", dac1, json={}).status_code == 409

    # the audit log shows every step
    rows = [(r.caller.rsplit("|", 1)[-1], r.action, r.outcome) for r in node.audit()]
    for step in [
        ("researcher", "application.submit", "error"),  # terms not accepted: 400
        ("researcher", "application.submit", "granted"),
        ("researcher", "application.approve", "denied"),
        ("dac-researcher", "application.approve", "denied"),
        ("dac2", "application.approve", "error"),  # 404
        ("dac1", "application.approve", "granted"),
        ("dac1", "application.reject", "error"),  # 409
        ("researcher", "visas.issue", "granted"),
        ("dac1", "grant.revoke", "granted"),
    ]:
        assert step in rows, (step, rows)
    downloads = node.audit(api="data")
    assert any(r.outcome == "denied" and r.status == 403 for r in downloads)
    history = node.get(f"/access/applications/{app['id']}", researcher).json()["history"]
    assert [(e["action"], e["state"]) for e in history] == [
        ("submit", "submitted"),
        ("approve", "approved"),
        ("revoke", "approved"),
    ]
    assert history[1]["actor"].endswith("|dac1") and history[2]["comment"] == "misuse"


def test_reject_and_return_for_changes(node):
    applicant, dac1 = node.token("applicant2"), node.token("dac1")
    rejected = node.apply(applicant)
    assert node.decide(dac1, rejected["id"], "reject").status_code == 400  # a reason is required
    resp = node.decide(dac1, rejected["id"], "reject", comment="purpose out of scope")
    assert resp.status_code == 200 and resp.json()["state"] == "rejected"
    assert "grant" not in resp.json()
    assert htsget_ticket(node, applicant).status_code == 403

    returned = node.apply(applicant, title="draft")
    resp = node.decide(dac1, returned["id"], "return", comment="name the cohort in the title")
    assert resp.json()["state"] == "returned"
    assert node.decide(dac1, returned["id"], "approve", expires_in_days=5).status_code == 409
    change = APPLICATION | {"title": "Cardiomyopathy cohort 2026"}
    change.pop("dataset")
    other = node.token("applicant3")
    path = f"/access/applications/{returned['id']}"
    assert (
        requests.put(node.url + path, json=change, headers=_auth(other), timeout=30).status_code
        == 404
    )
    resp = requests.put(node.url + path, json=change, headers=_auth(applicant), timeout=30)
    assert resp.status_code == 200 and resp.json()["state"] == "submitted"
    resp = node.decide(dac1, returned["id"], "approve", expires_in_days=5)
    assert resp.status_code == 200
    history = resp.json()["history"]
    assert [e["action"] for e in history] == ["submit", "return", "resubmit", "approve"]
    assert history[1]["comment"] == "name the cohort in the title"
    actions = {r.action for r in node.audit() if r.caller.endswith("|applicant2")}
    assert {"application.submit", "application.resubmit"} <= actions
    decided = {(r.action, r.object_id) for r in node.audit() if r.caller.endswith("|dac1")}
    assert ("application.reject", str(rejected["id"])) in decided
    assert ("application.return", str(returned["id"])) in decided


def test_expiry_closes_like_revocation(node):
    from server.auth.tables import AccessGrant

    applicant, dac1 = node.token("applicant4"), node.token("dac1")
    app = node.apply(applicant)
    grant = node.decide(dac1, app["id"], "approve", expires_in_days=1).json()["grant"]
    time.sleep(CACHE_SECONDS + 0.5)
    url = data_urls(htsget_ticket(node, applicant).json())[0]
    assert requests.get(url, timeout=30).status_code in (200, 206)
    # a day passes: the grant's end is now
    with node.db.session() as s:
        row = s.get(AccessGrant, grant["id"])
        row.expires = row.granted.replace(year=row.granted.year - 1)
    elapsed = wait_closed(
        lambda: (
            htsget_ticket(node, applicant).status_code == 403
            and requests.get(url, timeout=30).status_code == 403
        ),
        CACHE_SECONDS + 10,
    )
    assert elapsed <= CACHE_SECONDS + 10
    listed = node.get("/access/grants", dac1, params={"dataset": "ctl"}).json()["grants"]
    assert {g["id"]: g["state"] for g in listed}[grant["id"]] == "expired"
    assert node.get("/access/visas", applicant).json() == {"ga4gh_passport_v1": []}
