"""The data access pages in headless Chromium (Playwright with the system browser).

A real node (gunicorn, 2 workers) trusts the development issuer, which runs
its authorization code + PKCE login. The researcher signs in, applies
(accepting the dataset's DUO conditions), signs out; the DAC member signs in,
approves, and sees the grant. Every request the pages make goes to the node
or the issuer, and each screenshot is checked not to be blank.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

from server.auth.issuer import LocalIssuer
from tests.conftest import migrated, node_settings, start_server, stop_server

pytestmark = pytest.mark.slow

ISSUER_PORT, NODE_PORT = 18163, 18164
DUO_TERMS = ["DUO:0000007", "DUO:0000019"]


@pytest.fixture
def portal(tmp_path):
    from server.auth.access import set_terms
    from server.auth.roles import add_role
    from server.registry import add_dataset

    issuer = LocalIssuer(tmp_path / "issuer", f"http://127.0.0.1:{ISSUER_PORT}")
    issuer.set_user("researcher", registered=True)
    issuer.set_user("dac1", registered=True)
    served = issuer.start(port=ISSUER_PORT)
    settings = node_settings(
        tmp_path / "var",
        f"sqlite:///{tmp_path / 'node.db'}",
        auth_issuers=(issuer.settings_entry("discovery"),),
        access_cache_seconds=1,
    )
    db = migrated(settings)
    add_dataset(db, "ctl", access="controlled", name="Cardiomyopathy cohort")
    set_terms(db, "ctl", DUO_TERMS, "Disease-specific research; results must be published.")
    add_role(db, "ctl", "dac", "dac1")
    node = start_server(settings, port=NODE_PORT)
    try:
        yield node.url, issuer.issuer, db
    finally:
        stop_server(node)
        served.shutdown()
        db.dispose()


def not_blank(path) -> int:
    """The number of colours in a screenshot (a blank page has one or two)."""
    from PIL import Image

    with Image.open(path) as img:
        colours = img.convert("RGB").getcolors(1 << 24) or []
    return len(colours)


def sign_in(page, node: str, sub: str) -> None:
    page.goto(f"{node}/portal")
    page.click("#signin")
    page.wait_for_selector("input#sub")  # the issuer's own login page
    assert page.url.startswith(f"http://127.0.0.1:{ISSUER_PORT}/authorize?")
    assert "code_challenge_method=S256" in page.url
    page.fill("#sub", sub)
    page.click("#signin")
    page.wait_for_url(f"{node}/portal")
    assert page.inner_text("#who") == sub


def test_researcher_applies_dac_approves_and_sees_the_grant(chromium, portal, tmp_path):
    from playwright.sync_api import sync_playwright

    node, issuer, db = portal
    shots, urls = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("request", lambda r: urls.append(r.url))

        sign_in(page, node, "researcher")
        page.goto(f"{node}/portal/apply")
        assert "DUO:0000019" in page.content() and "publication required" in page.content()
        page.fill("#title", "Mitochondrial variants in cardiomyopathy")
        page.fill("#institution", "Aarhus University")
        page.check("input[name=purpose][value='DUO:0000007']")
        for term in DUO_TERMS:
            page.check(f"input[name=accepted_terms][value='{term}']")
        page.click("#apply-ctl")
        page.wait_for_url(f"{node}/portal/applications/*")
        assert page.inner_text("#state") == "submitted"
        assert page.query_selector("#decide") is None  # nobody decides their own
        shots.append(tmp_path / "1-applied.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
        application = page.url
        page.click("#signout")
        page.wait_for_selector("#signin")

        sign_in(page, node, "dac1")
        page.goto(f"{node}/portal/applications")
        assert "Mitochondrial variants in cardiomyopathy" in page.inner_text("#applications")
        page.click("text=Mitochondrial variants in cardiomyopathy")
        assert page.url == application
        shots.append(tmp_path / "2-review.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
        page.check("input[name=decision][value=approve]")
        page.fill("#expires_in_days", "30")
        page.fill("#comment", "approved for the stated purpose")
        page.click("#decide")
        page.wait_for_url(application)
        assert page.inner_text("#state") == "approved"
        assert "approved for the stated purpose" in page.inner_text("#history")

        page.goto(f"{node}/portal/grants")
        grants = page.inner_text("#grants")
        assert "researcher" in grants and "active" in grants and "DUO:0000019" in grants
        shots.append(tmp_path / "3-grants.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
        browser.close()

    for shot in shots:
        assert not_blank(shot) > 20, shot
    origins = {urlsplit(node).netloc, urlsplit(issuer).netloc}
    remote = sorted(u for u in urls if urlsplit(u).netloc not in origins)
    assert not remote, remote
    # the pages made the API's own records: one active grant, from dac1's decision
    from server.auth.access import all_grants

    (grant,) = all_grants(db)
    assert grant["subject"] == f"{issuer}|researcher" and grant["state"] == "active"
    assert grant["granted_by"] == f"{issuer}|dac1" and grant["duo"] == DUO_TERMS


def test_forms_need_the_session_csrf_token(portal):
    node, _, _ = portal
    resp = requests.post(
        f"{node}/portal/apply", data={"dataset": "ctl"}, allow_redirects=False, timeout=30
    )
    assert resp.status_code == 403
    assert "sign in" in resp.text
    resp = requests.get(f"{node}/portal/applications", allow_redirects=False, timeout=30)
    assert resp.status_code == 303 and resp.headers["location"] == "/portal/login"
    forged = requests.get(
        f"{node}/portal/callback",
        params={"code": "x", "state": "y"},
        allow_redirects=False,
        timeout=30,
    )
    assert forged.status_code == 401
