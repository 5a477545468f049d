"""Token and visa validation with real signed tokens from the development issuer."""

from __future__ import annotations

import time

import pytest

from server.auth import authorize, can_read
from server.auth.tokens import REGISTERED_ACCESS_VALUE, caller_from_request, validator_for
from server.errors import InvalidAuthentication, PermissionDenied
from tests.unit.auth.tokenkit import (
    AUDIENCE,
    TOKEN_FAILURES,
    VISA_FAILURES,
    forged_same_kid_key,
    unsigned,
)


def bearer(token: str) -> str:
    return f"Bearer {token}"


class TestValidTokens:
    def test_grant_visa_gives_exactly_its_dataset(self, auth_settings, kit):
        caller = caller_from_request(auth_settings, bearer(kit.grant("ds1")))
        assert caller.error is None and caller.authenticated
        assert caller.subject == f"{kit.issuer.issuer}|alice"
        assert caller.controlled == {"ds1"}
        assert not caller.registered
        authorize(caller, "controlled", "ds1")
        with pytest.raises(PermissionDenied):
            authorize(caller, "controlled", "ds2")

    def test_es256_passport_is_accepted(self, auth_settings, kit):
        token = kit.issuer.passport(
            "alice",
            [kit.issuer.grant_visa("alice", "ds1", alg="ES256")],
            audience=kit.audience,
            alg="ES256",
        )
        assert caller_from_request(auth_settings, bearer(token)).controlled == {"ds1"}

    def test_registered_needs_both_visas(self, auth_settings, kit):
        both = caller_from_request(auth_settings, bearer(kit.registered()))
        assert both.registered
        only_status = kit.passport(
            "alice",
            [kit.issuer.visa("alice", "ResearcherStatus", REGISTERED_ACCESS_VALUE, by="so")],
        )
        caller = caller_from_request(auth_settings, bearer(only_status))
        assert caller.authenticated and not caller.registered
        with pytest.raises(PermissionDenied):
            authorize(caller, "registered", "ds1")
        authorize(both, "registered", "ds1")

    def test_expiry_is_minimum_over_token_and_visas_used(self, auth_settings, kit):
        token = kit.passport(
            "alice", [kit.issuer.grant_visa("alice", "ds1", expires_in=120)], expires_in=3600
        )
        caller = caller_from_request(auth_settings, bearer(token))
        assert caller.expires is not None and caller.expires <= time.time() + 121

    def test_linked_identity_lets_other_sub_visa_count(self, auth_settings, kit):
        iss = kit.issuer
        link = iss.linked_visa("alice", [("alice-at-lab", iss.issuer)])
        token = kit.passport("alice", [link, iss.grant_visa("alice-at-lab", "ds1")])
        assert caller_from_request(auth_settings, bearer(token)).controlled == {"ds1"}

    def test_link_from_untrusted_issuer_does_not_count(self, auth_settings, kit):
        link = kit.stranger.linked_visa("alice", [("alice-at-lab", kit.issuer.issuer)])
        token = kit.passport("alice", [link, kit.issuer.grant_visa("alice-at-lab", "ds1")])
        assert caller_from_request(auth_settings, bearer(token)).controlled == frozenset()

    def test_no_token_is_anonymous(self, auth_settings):
        caller = caller_from_request(auth_settings, None)
        assert not caller.authenticated and caller.error is None
        with pytest.raises(InvalidAuthentication):
            authorize(caller, "controlled", "ds1")
        authorize(caller, "public", "ds1")

    def test_warm_cache_returns_same_caller(self, auth_settings, kit):
        token = kit.grant("ds1")
        first = caller_from_request(auth_settings, bearer(token))
        validator, _ = validator_for(auth_settings)
        assert len(validator.callers) >= 1
        assert caller_from_request(auth_settings, bearer(token)) is first

    def test_cached_caller_is_not_used_past_its_expiry(self, auth_settings, kit):
        validator, _ = validator_for(auth_settings)
        token = kit.passport("alice", [kit.issuer.grant_visa("alice", "ds1", expires_in=120)])
        first = validator.caller_for_token(token)
        assert first.controlled == {"ds1"} and validator.caller_for_token(token) is first
        later = validator.caller_for_token(token, now=first.expires + 1)
        assert later is not first and later.controlled == frozenset()  # the grant has expired

    def test_one_validator_per_configuration(self, auth_settings, kit):
        same = auth_settings.with_overrides(var_dir=auth_settings.var_dir + "-copy")
        assert validator_for(same)[0] is validator_for(auth_settings)[0]
        other = auth_settings.with_overrides(auth_audience="https://other.example")
        assert validator_for(other)[0] is not validator_for(auth_settings)[0]


class TestRejectedTokens:
    @pytest.mark.parametrize("case", TOKEN_FAILURES)
    def test_bad_token_fails_closed_with_401(self, auth_settings, kit, case):
        token, status = kit.failure_cases("ds1")[case]
        assert status == 401
        caller = caller_from_request(auth_settings, bearer(token))
        assert caller.error and not caller.authenticated
        assert caller.controlled == frozenset()
        with pytest.raises(InvalidAuthentication):
            authorize(caller, "public", "ds1")  # a rejected token never becomes anonymous
        assert not can_read(caller, "controlled", "ds1")

    @pytest.mark.parametrize("case", VISA_FAILURES)
    def test_unusable_visa_gives_403(self, auth_settings, kit, case):
        token, status = kit.failure_cases("ds1")[case]
        assert status == 403
        caller = caller_from_request(auth_settings, bearer(token))
        assert caller.authenticated, caller.error
        with pytest.raises(PermissionDenied):
            authorize(caller, "controlled", "ds1")

    def test_grant_without_by_is_ignored(self, auth_settings, kit):
        token = kit.passport("alice", [kit.issuer.grant_visa("alice", "ds1", by=None)])
        assert caller_from_request(auth_settings, bearer(token)).controlled == frozenset()

    def test_self_asserted_grant_is_ignored(self, auth_settings, kit):
        token = kit.passport("alice", [kit.issuer.grant_visa("alice", "ds1", by="self")])
        assert caller_from_request(auth_settings, bearer(token)).controlled == frozenset()

    def test_missing_audience_is_rejected(self, auth_settings, kit):
        claims = kit.claims()
        del claims["aud"]
        assert caller_from_request(auth_settings, bearer(kit.issuer.sign(claims))).error

    def test_not_yet_valid_is_rejected(self, auth_settings, kit):
        token = kit.issuer.sign(kit.claims(nbf=int(time.time()) + 3600))
        assert "not yet valid" in caller_from_request(auth_settings, bearer(token)).error

    def test_issued_in_future_is_rejected(self, auth_settings, kit):
        token = kit.issuer.sign(kit.claims(iat=int(time.time()) + 3600))
        assert caller_from_request(auth_settings, bearer(token)).error

    def test_missing_exp_is_rejected(self, auth_settings, kit):
        claims = kit.claims()
        del claims["exp"]
        assert "exp" in caller_from_request(auth_settings, bearer(kit.issuer.sign(claims))).error

    def test_rs512_is_refused(self, auth_settings, kit):
        token = kit.issuer.sign(kit.claims(), alg="RS512")
        assert "not allowed" in caller_from_request(auth_settings, bearer(token)).error

    def test_unsigned_even_with_known_kid_is_refused(self, auth_settings, kit):
        token = unsigned(kit.claims(), {"kid": kit.issuer.rsa_key.kid})
        assert caller_from_request(auth_settings, bearer(token)).error

    def test_crit_header_is_refused(self, auth_settings, kit):
        token = kit.issuer.sign(kit.claims(), header={"crit": ["kid"]})
        assert caller_from_request(auth_settings, bearer(token)).error

    @pytest.mark.parametrize(
        "header",
        ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a.b", "Bearer !!!.???.###", "token"],
    )
    def test_malformed_headers_fail_closed(self, auth_settings, header):
        caller = caller_from_request(auth_settings, header)
        if header.strip() in ("Bearer",):
            assert caller.error  # a scheme without a token is not anonymous
        else:
            assert caller.error

    def test_no_configured_issuer_refuses_every_token(self, auth_settings, kit):
        caller = caller_from_request(
            auth_settings.with_overrides(auth_issuers=()), bearer(kit.grant("ds1"))
        )
        assert "no trusted" in caller.error

    def test_broken_issuer_config_refuses_every_token(self, auth_settings, kit):
        broken = auth_settings.with_overrides(
            auth_issuers=({"issuer": kit.issuer.issuer, "jwks_uri": "http://evil.example/jwks"},)
        )
        assert "misconfigured" in caller_from_request(broken, bearer(kit.grant("ds1"))).error

    def test_token_signed_by_stranger_with_trusted_iss_is_refused(self, auth_settings, kit):
        forged = kit.stranger.sign(kit.claims())  # claims our issuer, signed by another key
        assert caller_from_request(auth_settings, bearer(forged)).error


DROP = object()  # a claim left out of the token


class TestClaims:
    """The claim rules, as joserfc's claims registry applies them with our leeway."""

    @staticmethod
    def error(auth_settings, kit, **changes) -> str | None:
        claims = {k: v for k, v in (kit.claims() | changes).items() if v is not DROP}
        return caller_from_request(auth_settings, bearer(kit.issuer.sign(claims))).error

    @pytest.mark.parametrize(
        "changes",
        [
            {"exp": -30},  # expired, but within the clock-skew leeway
            {"nbf": 30},
            {"iat": 30},
            {"aud": ["https://other.example", AUDIENCE]},
            {"jti": 7},  # claims outside the rules are left alone
            {"scope": "", "azp": "x"},
        ],
        ids=["exp-leeway", "nbf-leeway", "iat-leeway", "aud-list", "jti-number", "extra"],
    )
    def test_accepted(self, auth_settings, kit, changes):
        now = int(time.time())
        times = {k: now + v for k, v in changes.items() if k in ("exp", "nbf", "iat")}
        assert self.error(auth_settings, kit, **(changes | times)) is None

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"exp": -120}, "token has expired"),
            ({"nbf": 3600}, "not yet valid"),
            ({"iat": 3600}, "issued in the future"),
            ({"exp": DROP}, "missing 'exp' claim"),
            ({"exp": DROP, "iat": DROP}, "missing 'exp' claim"),  # the first in claim order
            ({"iat": DROP}, "missing 'iat' claim"),
            ({"sub": DROP}, "missing 'sub' claim"),
            ({"sub": ""}, "'sub'"),
            ({"exp": True}, "'exp'"),  # a boolean is not a NumericDate
            ({"exp": float("nan")}, "'exp'"),  # NaN never compares as expired
            ({"exp": "9999999999"}, "'exp'"),
            ({"aud": DROP}, "audience does not include this service"),
            ({"aud": "https://other.example"}, "audience does not include this service"),
            ({"aud": []}, "audience does not include this service"),
        ],
    )
    def test_rejected(self, auth_settings, kit, changes, message):
        now = int(time.time())
        times = {
            k: now + v for k, v in changes.items() if k in ("exp", "nbf", "iat") and type(v) is int
        }
        error = self.error(auth_settings, kit, **(changes | times))
        assert error and message in error


class TestPassportsInBody:
    def test_body_passports_add_grants(self, auth_settings, kit):
        caller = caller_from_request(
            auth_settings, None, passports=[kit.grant("ds1"), kit.grant("ds2")]
        )
        assert caller.controlled == {"ds1", "ds2"}

    def test_header_and_body_for_different_subjects_are_refused(self, auth_settings, kit):
        caller = caller_from_request(
            auth_settings, bearer(kit.grant("ds1", sub="bob")), passports=[kit.grant("ds2")]
        )
        assert caller.error

    def test_one_bad_passport_fails_the_request(self, auth_settings, kit):
        bad, _ = kit.failure_cases("ds1")["same kid forged key"]
        caller = caller_from_request(auth_settings, None, passports=[kit.grant("ds2"), bad])
        assert caller.error

    def test_non_string_passport_is_refused(self, auth_settings):
        assert caller_from_request(auth_settings, None, passports=[{"x": 1}]).error


class TestRemoteKeysAndUserinfo:
    """Against a development issuer really listening on loopback."""

    def test_discovery_configuration(self, tmp_path, served_kit):
        from server.settings import Settings

        settings = served_kit.trusting(Settings(var_dir=str(tmp_path)), "discovery")
        caller = caller_from_request(settings, bearer(served_kit.grant("ds1")))
        assert caller.controlled == {"ds1"}, caller.error

    def test_jwks_uri_configuration(self, tmp_path, served_kit):
        from server.settings import Settings

        settings = served_kit.trusting(Settings(var_dir=str(tmp_path)), "jwks_uri")
        assert caller_from_request(settings, bearer(served_kit.grant("ds1"))).controlled == {"ds1"}

    def test_access_token_visas_come_from_userinfo(self, tmp_path, served_kit):
        from server.settings import Settings

        settings = served_kit.trusting(Settings(var_dir=str(tmp_path)), "discovery")
        served_kit.issuer.set_user("carol", grants=["ds7"], registered=True)
        token = served_kit.issuer.access_token("carol", audience=served_kit.audience)
        caller = caller_from_request(settings, bearer(token))
        assert caller.controlled == {"ds7"} and caller.registered, caller.error
        validator, _ = validator_for(settings)
        assert len(validator.userinfo) >= 1

    def test_jku_visa_from_unconfigured_issuer_needs_allowlist(self, tmp_path, kit, served_issuer):
        from server.settings import Settings

        # The node trusts only `kit.issuer` for tokens; the visa comes from the served issuer.
        visa = served_issuer.grant_visa("alice", "ds1")
        token = kit.passport("alice", [visa])
        base = kit.trusting(Settings(var_dir=str(tmp_path)))
        assert caller_from_request(base, bearer(token)).controlled == frozenset()
        allowed = base.with_overrides(
            visa_jku_allowlist={served_issuer.issuer: [served_issuer.jwks_uri]}
        )
        assert caller_from_request(allowed, bearer(token)).controlled == {"ds1"}

    def test_jku_for_another_issuer_is_not_followed(self, tmp_path, kit, served_issuer):
        from server.settings import Settings

        visa = served_issuer.grant_visa("alice", "ds1")
        token = kit.passport("alice", [visa])
        settings = kit.trusting(Settings(var_dir=str(tmp_path))).with_overrides(
            visa_jku_allowlist={"https://someone.else": [served_issuer.jwks_uri]}
        )
        assert caller_from_request(settings, bearer(token)).controlled == frozenset()

    def test_forged_key_with_same_kid_is_not_rescued_by_refetch(self, tmp_path, served_kit):
        from server.settings import Settings

        settings = served_kit.trusting(Settings(var_dir=str(tmp_path)), "jwks_uri")
        forged = served_kit.issuer.sign(
            served_kit.claims(), key=forged_same_kid_key(served_kit.issuer)
        )
        assert "signature" in caller_from_request(settings, bearer(forged)).error
