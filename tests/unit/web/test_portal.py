"""The data access pages (server.web.portal) in process: sessions, CSRF,
escaping and the sign-in answer, with real signed tokens."""

from __future__ import annotations

import pytest
from itsdangerous import URLSafeTimedSerializer

from server.auth.access import apply, set_terms
from server.auth.roles import add_role
from server.auth.urls import signing_key
from server.registry import add_dataset
from tests.unit.auth.nodes import module_node

HOSTILE = '<script>alert("x")</script>'


def populate(db):
    add_dataset(db, "ctl", access="controlled", name="<b>cohort</b>")
    set_terms(db, "ctl", ["DUO:0000007"], "terms")
    add_role(db, "ctl", "dac", "dac1")


@pytest.fixture(scope="module", params=["sqlite"])
def node(request, tmp_path_factory, kit):
    yield from module_node(request, tmp_path_factory, kit.trusting, populate)


def session_cookie(node, token: str, csrf: str = "c" * 32) -> dict:
    signer = URLSafeTimedSerializer(signing_key(node.settings), salt="genomeport-portal")
    return {"Cookie": f"gp_session={signer.dumps({'token': token, 'csrf': csrf})}"}


def test_signed_out_pages_send_to_sign_in(node):
    home = node.client.get("/portal")
    assert home.status_code == 200 and 'href="/portal/login"' in home.text
    assert "&lt;b&gt;cohort&lt;/b&gt;" in home.text  # dataset names are data
    assert "default-src 'none'" in home.headers["content-security-policy"]
    assert "<script" not in home.text  # no JavaScript at all
    resp = node.client.get("/portal/applications", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/portal/login"


def test_a_tampered_or_foreign_session_is_no_session(node, kit):
    cookie = session_cookie(node, kit.registered("alice"))
    forged = {"Cookie": cookie["Cookie"][:-2] + "xx"}
    resp = node.client.get("/portal/applications", headers=forged, follow_redirects=False)
    assert resp.status_code == 303
    stranger = kit.stranger.passport("alice", [], audience=kit.audience)
    resp = node.client.get(
        "/portal/applications", headers=session_cookie(node, stranger), follow_redirects=False
    )
    assert resp.status_code == 303  # a token the node does not accept signs nobody in


def test_forms_need_the_sessions_csrf_token(node, kit):
    cookies = session_cookie(node, kit.registered("alice"))
    form = {
        "dataset": "ctl",
        "title": "t",
        "institution": "i",
        "accepted_terms": "DUO:0000007",
    }
    for csrf in ("", "wrong"):
        resp = node.client.post("/portal/apply", data=form | {"csrf": csrf}, headers=cookies)
        assert resp.status_code == 403
    resp = node.client.post(
        "/portal/apply", data=form | {"csrf": "c" * 32}, headers=cookies, follow_redirects=False
    )
    assert resp.status_code == 303 and resp.headers["location"].startswith("/portal/applications/")


def test_what_applicants_write_is_escaped_for_the_dac(node, kit):
    from server.auth.tokens import caller_from_request

    carol = caller_from_request(node.settings, f"Bearer {kit.registered('carol')}")
    app = apply(
        node.db,
        node.settings,
        carol,
        {
            "dataset": "ctl",
            "title": HOSTILE,
            "purpose": [],
            "institution": HOSTILE,
            "accepted_terms": ["DUO:0000007"],
        },
    )
    page = node.client.get(
        f"/portal/applications/{app['id']}", headers=session_cookie(node, kit.registered("dac1"))
    )
    assert page.status_code == 200
    assert HOSTILE not in page.text and "&lt;script&gt;" in page.text
    assert 'id="decide"' in page.text  # the DAC member may decide it
    own = node.client.get(
        f"/portal/applications/{app['id']}", headers=session_cookie(node, kit.registered("carol"))
    )
    assert 'id="decide"' not in own.text
    other = node.client.get(
        f"/portal/applications/{app['id']}", headers=session_cookie(node, kit.registered("bob"))
    )
    assert other.status_code == 404


def test_a_sign_in_answer_must_match_its_request(node):
    resp = node.client.get("/portal/callback", params={"code": "c", "state": "s"})
    assert resp.status_code == 401
    signer = URLSafeTimedSerializer(signing_key(node.settings), salt="genomeport-portal")
    pending = {"Cookie": f"gp_login={signer.dumps({'state': 'expected', 'verifier': 'v'})}"}
    resp = node.client.get(
        "/portal/callback", params={"code": "c", "state": "other"}, headers=pending
    )
    assert resp.status_code == 401 and "does not match" in resp.text
