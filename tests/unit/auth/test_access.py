"""Data access management (server.auth.access) on SQLite and PostgreSQL:
the rules of applications and decisions, grants in the caller, the data
plane's re-check, the node's visas, the cache bound, and the development
issuer's PKCE login."""

from __future__ import annotations

import base64
import hashlib
import stat
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from joserfc import jwt

from server.auth import Caller, authorize_dataset, beacon_tier
from server.auth import access as acc
from server.auth.roles import add_role
from server.auth.tables import AccessGrant
from server.errors import Conflict, InvalidAuthentication, InvalidInput, NotFound, PermissionDenied
from server.registry import add_dataset
from server.settings import SettingsError

ISS = "https://login.example.dk"
OTHER = "https://other-login.example.org"
TERMS = ["DUO:0000007", "DUO:0000019"]
BODY = {
    "dataset": "ctl",
    "title": "A project",
    "purpose": ["DUO:0000007"],
    "institution": "An institution",
    "accepted_terms": TERMS,
}


def who(sub: str, iss: str = ISS) -> Caller:
    return Caller(subject=f"{iss}|{sub}", issuer=iss, registered=True, expires=time.time() + 600)


@pytest.fixture
def node(settings, db):
    add_dataset(db, "ctl", access="controlled", grant_value="urn:ctl")
    add_dataset(db, "ctl2", access="controlled")
    add_dataset(db, "pub", access="public")
    acc.set_terms(db, "ctl", TERMS, "words")
    add_role(db, "ctl", "dac", "dac1")
    add_role(db, "ctl2", "dac", "dac2")
    add_role(db, "ctl", "dac", "bound", ISS)  # a DAC member from one issuer only
    settings = settings.with_overrides(access_cache_seconds=0)
    return settings, db


def approved(settings, db, sub="alice", days=10) -> dict:
    app = acc.apply(db, settings, who(sub), BODY)
    return acc.decide(
        db, settings, who("dac1"), app["id"], {"decision": "approve", "expires_in_days": days}
    )


class TestApply:
    @pytest.mark.parametrize(
        "change,error",
        [
            ({"accepted_terms": ["DUO:0000007"]}, "must be accepted"),
            ({"purpose": ["not-a-term"]}, "not a DUO term"),
            ({"purpose": "DUO:0000007"}, "list of DUO"),
            ({"title": " "}, "'title' is required"),
            ({"institution": "x" * 513}, "at most 512"),
            ({"title": "a\x00b"}, "printable"),
            ({"dataset": "pub"}, "not controlled"),
        ],
    )
    def test_bad_application_is_refused(self, node, change, error):
        settings, db = node
        with pytest.raises(InvalidInput, match=error):
            acc.apply(db, settings, who("alice"), BODY | change)

    def test_one_open_application_per_dataset(self, node):
        settings, db = node
        first = acc.apply(db, settings, who("alice"), BODY)
        with pytest.raises(Conflict, match="still open"):
            acc.apply(db, settings, who("alice"), BODY)
        acc.decide(db, settings, who("dac1"), first["id"], {"decision": "reject", "comment": "no"})
        assert acc.apply(db, settings, who("alice"), BODY)["state"] == "submitted"

    def test_unknown_dataset_is_not_found(self, node):
        settings, db = node
        with pytest.raises(NotFound):
            acc.apply(db, settings, who("alice"), BODY | {"dataset": "nope"})

    def test_anonymous_or_rejected_token_is_401(self, node):
        settings, db = node
        for caller in (Caller(), Caller(error="bad signature")):
            with pytest.raises(InvalidAuthentication):
                acc.apply(db, settings, caller, BODY)


class TestDecide:
    def test_only_a_dac_member_of_that_dataset_decides(self, node):
        settings, db = node
        app = acc.apply(db, settings, who("alice"), BODY)
        for outsider in (who("dac2"), who("bob"), who("bound", OTHER)):
            with pytest.raises(NotFound):
                acc.decide(
                    db, settings, outsider, app["id"], {"decision": "reject", "comment": "x"}
                )
            with pytest.raises(NotFound):
                acc.get_application(db, settings, outsider, app["id"])
        done = acc.decide(
            db, settings, who("bound"), app["id"], {"decision": "reject", "comment": "x"}
        )
        assert done["state"] == "rejected"

    def test_nobody_decides_their_own(self, node):
        settings, db = node
        app = acc.apply(db, settings, who("dac1"), BODY)
        with pytest.raises(PermissionDenied, match="own"):
            acc.decide(
                db, settings, who("dac1"), app["id"], {"decision": "approve", "expires_in_days": 1}
            )
        # the same sub through another issuer is still the applicant
        add_role(db, "ctl", "dac", "dac1", OTHER)
        with pytest.raises(PermissionDenied, match="own"):
            acc.decide(
                db,
                settings,
                who("dac1", OTHER),
                app["id"],
                {"decision": "approve", "expires_in_days": 1},
            )

    @pytest.mark.parametrize(
        "body,error",
        [
            ({"decision": "approve"}, "expires_in_days"),
            ({"decision": "approve", "expires_in_days": 0}, "expires_in_days"),
            ({"decision": "approve", "expires_in_days": True}, "expires_in_days"),
            ({"decision": "approve", "expires_in_days": 10**6}, "at most"),
            ({"decision": "reject"}, "comment"),
            ({"decision": "grant-everything"}, "decision"),
        ],
    )
    def test_bad_decision_is_refused(self, node, body, error):
        settings, db = node
        app = acc.apply(db, settings, who("alice"), BODY)
        with pytest.raises(InvalidInput, match=error):
            acc.decide(db, settings, who("dac1"), app["id"], body)
        assert acc.get_application(db, settings, who("alice"), app["id"])["state"] == "submitted"

    def test_a_decided_application_cannot_be_decided_again(self, node):
        settings, db = node
        app = approved(settings, db)
        with pytest.raises(Conflict):
            acc.decide(db, settings, who("dac1"), app["id"], {"decision": "reject", "comment": "x"})
        with pytest.raises(Conflict):
            acc.update(db, settings, who("alice"), app["id"], BODY)


class TestGrantsInDecisions:
    def test_a_grant_opens_its_dataset_until_revoked(self, node):
        settings, db = node
        ctl = _dataset(db, "ctl")
        alice = who("alice")
        with pytest.raises(PermissionDenied):
            authorize_dataset(acc.with_grants(settings, db, alice), ctl)
        grant = approved(settings, db)["grant"]
        opened = acc.with_grants(settings, db, alice)
        assert opened.controlled == {"urn:ctl"}
        authorize_dataset(opened, ctl)
        assert beacon_tier(opened, ctl) == "record"
        with pytest.raises(PermissionDenied):
            authorize_dataset(opened, _dataset(db, "ctl2"))
        acc.grant_check(settings, db, alice.label, "ctl")  # passes
        acc.revoke(db, settings, who("dac1"), grant["id"])
        closed = acc.with_grants(settings, db, alice)
        assert closed.controlled == frozenset()
        with pytest.raises(PermissionDenied, match="revoked"):
            acc.grant_check(settings, db, alice.label, "ctl")

    def test_an_expired_grant_closes(self, node):
        settings, db = node
        grant = approved(settings, db)["grant"]
        with db.session() as s:
            row = s.get(AccessGrant, grant["id"])
            row.expires = row.granted.replace(year=row.granted.year - 1)
        assert acc.with_grants(settings, db, who("alice")).controlled == frozenset()
        with pytest.raises(PermissionDenied):
            acc.grant_check(settings, db, who("alice").label, "ctl")

    def test_urls_without_a_grant_of_this_node_pass(self, node):
        settings, db = node
        for label, dataset in [("anonymous", "pub"), (who("bob").label, "ctl"), ("", "ctl")]:
            acc.grant_check(settings, db, label, dataset)

    def test_the_cache_holds_a_lookup_for_its_bound_only(self, node):
        settings, db = node
        cached = settings.with_overrides(access_cache_seconds=1)
        grant = approved(settings, db)["grant"]
        assert acc.with_grants(cached, db, who("alice")).controlled == {"urn:ctl"}
        with db.session() as s:  # revoked by another process: this one's cache does not know
            s.get(AccessGrant, grant["id"]).revoked = acc._now()
        assert acc.with_grants(cached, db, who("alice")).controlled == {"urn:ctl"}
        time.sleep(1.1)
        assert acc.with_grants(cached, db, who("alice")).controlled == frozenset()

    def test_the_cache_bound_cannot_exceed_60_seconds(self, settings):
        with pytest.raises(SettingsError, match="60"):
            settings.with_overrides(access_cache_seconds=61)


class TestGrantLists:
    def test_dac_sees_its_datasets_operator_sees_all_others_their_own(self, node):
        settings, db = node
        approved(settings, db, "alice")
        other = acc.apply(
            db, settings, who("carol"), BODY | {"dataset": "ctl2", "accepted_terms": []}
        )
        acc.decide(
            db, settings, who("dac2"), other["id"], {"decision": "approve", "expires_in_days": 3}
        )
        operator = settings.with_overrides(access_operators=(who("op").label,))

        def seen(s, caller):
            return sorted(g["dataset"] for g in acc.list_grants(db, s, caller)["grants"])

        assert seen(settings, who("dac1")) == ["ctl"]
        assert seen(settings, who("dac2")) == ["ctl2"]
        assert seen(settings, who("alice")) == ["ctl"]
        assert seen(settings, who("op")) == []  # not an operator on this node
        assert seen(operator, who("op")) == ["ctl", "ctl2"]
        with pytest.raises(PermissionDenied):
            acc.list_grants(db, settings, who("dac1"), dataset="ctl2")

    def test_only_its_dac_or_an_operator_revokes(self, node):
        settings, db = node
        grant = approved(settings, db, "alice")["grant"]
        for caller in (who("alice"), who("dac2"), who("bound", OTHER)):
            with pytest.raises(NotFound):
                acc.revoke(db, settings, caller, grant["id"])
        operator = settings.with_overrides(access_operators=(who("op").label,))
        assert acc.revoke(db, operator, who("op"), grant["id"])["state"] == "revoked"
        with pytest.raises(Conflict):
            acc.revoke(db, operator, who("op"), grant["id"])


class TestVisas:
    def test_visa_is_signed_by_the_node_and_ends_with_its_grant(self, node):
        settings, db = node
        grant = approved(settings, db, days=1)["grant"]
        (visa,) = acc.visas(db, settings, who("alice"))["ga4gh_passport_v1"]
        decoded = jwt.decode(visa, acc.public_keys(settings), algorithms=["RS256"])
        claims = decoded.claims
        assert claims["ga4gh_visa_v1"]["value"] == "urn:ctl"
        assert claims["ga4gh_visa_v1"]["by"] == "dac" and claims["duo"] == TERMS
        assert claims["exp"] <= time.time() + settings.access_visa_ttl + 1
        short = settings.with_overrides(access_visa_ttl=10**7)
        (long_visa,) = acc.visas(db, short, who("alice"))["ga4gh_passport_v1"]
        exp = jwt.decode(long_visa, acc.public_keys(settings), algorithms=["RS256"]).claims["exp"]
        assert abs(exp - (time.time() + 86400)) < 120  # cut to the grant's one day
        assert grant["state"] == "active"
        # the key is made once and kept private
        key_file = Path(settings.var_dir).resolve() / "access" / "visa-key.json"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    def test_a_forged_visa_does_not_verify(self, node):
        from joserfc.errors import BadSignatureError
        from joserfc.jwk import RSAKey

        settings, db = node
        approved(settings, db)
        forged = jwt.encode(
            {"alg": "RS256", "kid": acc.visa_key(settings).kid},
            {"sub": "mallory", "ga4gh_visa_v1": {"value": "urn:ctl"}},
            RSAKey.generate_key(2048),
        )
        with pytest.raises(BadSignatureError):
            jwt.decode(forged, acc.public_keys(settings), algorithms=["RS256"])


class TestAudit:
    def test_every_step_and_refusal_is_a_row(self, node):
        from server.db.tables import AuditEvent

        settings, db = node
        app = acc.apply(db, settings, who("alice"), BODY)
        with pytest.raises(PermissionDenied):
            acc.decide(
                db, settings, who("alice"), app["id"], {"decision": "approve", "expires_in_days": 1}
            )
        acc.decide(db, settings, who("dac1"), app["id"], {"decision": "return", "comment": "why"})
        acc.update(db, settings, who("alice"), app["id"], BODY)
        with db.session() as s:
            rows = s.execute(
                sa.select(AuditEvent.caller, AuditEvent.action, AuditEvent.outcome)
                .where(AuditEvent.api == "access", AuditEvent.object_id != "")
                .order_by(AuditEvent.id)
            ).all()
        assert [(c.rsplit("|", 1)[1], a, o) for c, a, o in rows] == [
            ("alice", "application.approve", "denied"),
            ("dac1", "application.return", "granted"),
            ("alice", "application.resubmit", "granted"),
        ]


class TestDevelopmentIssuerPkce:
    PARAMS = {
        "response_type": "code",
        "client_id": "genomeport",
        "redirect_uri": "http://127.0.0.1:9/portal/callback",
        "code_challenge_method": "S256",
        "resource": "http://127.0.0.1:9",
    }

    def _code(self, issuer, verifier: str) -> str:
        from urllib.parse import parse_qs, urlsplit

        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        params = self.PARAMS | {"code_challenge": challenge.rstrip(b"=").decode(), "state": "s"}
        assert issuer.authorization_request(params) is None
        target = issuer.authorize(params, "alice")
        query = parse_qs(urlsplit(target).query)
        assert query["state"] == ["s"]
        return query["code"][0]

    def test_code_needs_its_verifier_and_works_once(self, tmp_path):
        from server.auth.issuer import LocalIssuer

        issuer = LocalIssuer(tmp_path)
        form = {k: self.PARAMS[k] for k in ("client_id", "redirect_uri")}
        form["grant_type"] = "authorization_code"
        code = self._code(issuer, "v" * 50)
        assert issuer.token(form | {"code": code, "code_verifier": "w" * 50})[0] == 400
        assert issuer.token(form | {"code": code, "code_verifier": "v" * 50})[0] == 400  # spent
        code = self._code(issuer, "v" * 50)
        status, answer = issuer.token(form | {"code": code, "code_verifier": "v" * 50})
        assert status == 200
        claims = jwt.decode(answer["access_token"], issuer.rsa_key).claims
        assert claims["sub"] == "alice" and claims["aud"] == "http://127.0.0.1:9"

    @pytest.mark.parametrize(
        "change",
        [
            {"code_challenge_method": "plain"},
            {"redirect_uri": "http://evil.example/cb"},
            {"response_type": "token"},
        ],
    )
    def test_bad_authorization_request_is_refused(self, tmp_path, change):
        from server.auth.issuer import LocalIssuer

        params = self.PARAMS | {"code_challenge": "x" * 43} | change
        assert LocalIssuer(tmp_path).authorization_request(params) is not None


def _dataset(db, dataset_id):
    from server.db.tables import Dataset

    with db.session() as s:
        return s.get(Dataset, dataset_id)


def test_cli_sets_terms_lists_and_revokes_grants(node):
    import json

    from click.testing import CliRunner

    from server.cli import Ctx, main

    settings, db = node
    grant = approved(settings, db, "alice")["grant"]
    runner, obj = CliRunner(), Ctx(settings)
    r = runner.invoke(main, ["access", "terms", "ctl2", "DUO:0000042", "--text", "any"], obj=obj)
    assert r.exit_code == 0 and json.loads(r.output)["duo"] == ["DUO:0000042"], r.output
    r = runner.invoke(main, ["access", "terms", "ctl2", "GRU"], obj=obj)
    assert r.exit_code == 1 and "not a DUO term" in r.output
    r = runner.invoke(main, ["access", "grants", "--json"], obj=obj)
    assert [g["state"] for g in json.loads(r.output)] == ["active"]
    r = runner.invoke(main, ["access", "revoke", str(grant["id"]), "--comment", "ended"], obj=obj)
    assert r.exit_code == 0 and "revoked: grant" in r.output, r.output
    r = runner.invoke(main, ["access", "revoke", str(grant["id"])], obj=obj)
    assert r.exit_code == 1 and "already revoked" in r.output
    history = acc.get_application(db, settings, who("alice"), grant["application"])["history"]
    assert history[-1]["action"] == "revoke" and history[-1]["actor"].startswith("operator:")
    obj.db.dispose()


def test_data_use_conditions_are_the_catalogue_metadata(node, tmp_path):
    """One place for a dataset's DUO terms: what applicants must accept is what
    Beacon /datasets and the FAIR Data Point publish, whichever command set it."""
    from server.catalogue import metadata

    settings, db = node
    with db.session() as session:
        assert metadata.of_dataset(session, settings, "ctl")["data_use"] == TERMS
    document = tmp_path / "ctl.yaml"
    document.write_text("title: Controlled cohort\ndata_use: [DUO:0000042]\n")
    metadata.store(db, "ctl", document)
    with db.session() as session:
        assert acc.terms_of(session, "ctl") == (["DUO:0000042"], "words")
    with pytest.raises(InvalidInput):  # the terms of the metadata must now be accepted
        acc.apply(db, settings, who("alice"), BODY)
    acc.set_terms(db, "ctl", TERMS, "words")
    with db.session() as session:
        meta = metadata.of_dataset(session, settings, "ctl")
        assert meta["data_use"] == TERMS and meta["title"] == "Controlled cohort"
