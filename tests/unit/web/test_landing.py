"""``/``: an HTML page for a browser, JSON for a program, both from the database."""

from urllib.parse import urlsplit

import pytest

from server.web.landing import wants_html
from tests.unit.web.pages import BROWSER, links


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (BROWSER, True),
        ("text/html", True),
        (None, False),
        ("", False),
        ("*/*", False),  # curl
        ("application/json", False),
        ("application/json, text/html", False),  # a tie goes to JSON
        ("text/html;q=0.5, application/json", False),
        ("application/json;q=0.1, text/html", True),
    ],
)
def test_html_only_for_clients_that_prefer_it(accept, html):
    assert wants_html(accept) is html


@pytest.fixture
def registered(db, testdata):
    from server.registry import add_dataset, add_files

    add_dataset(db, "open1", access="public", name="Open <b>cohort</b>", description='x < y & "z"')
    reads = testdata / "reads"
    pair = [reads / "htsnexus_test_NA12878.bam", reads / "htsnexus_test_NA12878.cram"]
    add_files(db, pair, "open1", object_id="na12878", progress=False)
    add_dataset(db, "closed1", access="controlled", assembly="GRCh38")
    add_files(db, [testdata / "variants/spec-v4.3.vcf.gz"], "closed1", progress=False)
    add_dataset(db, "empty1", access="public")


def test_api_clients_get_json_from_the_database(client, registered):
    for headers in ({}, {"Accept": "application/json"}, {"Accept": "*/*"}):
        r = client.get("/", headers=headers)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert "Accept" in r.headers["vary"]
        body = r.json()
    datasets = {d["id"]: d for d in body["datasets"]}
    assert datasets["open1"] == {
        "id": "open1",
        "name": "Open <b>cohort</b>",
        "description": 'x < y & "z"',
        "assembly": "",
        "access": "public",
        "objects": 1,
        "files": 2,
    }
    assert datasets["empty1"]["files"] == 0
    # a controlled dataset is listed (as Beacon /datasets lists it) but its files are not counted
    assert datasets["closed1"]["access"] == "controlled"
    assert datasets["closed1"]["objects"] is None and datasets["closed1"]["files"] is None
    ids = [a["id"] for a in body["apis"]]
    assert ids == ["htsget-reads", "htsget-variants", "beacon", "wes", "drs", "fdp"]
    base = body["url"]
    assert base == "http://127.0.0.1:8080"
    for api in body["apis"]:
        assert api["url"].startswith(base)
        info = client.get(urlsplit(api["serviceInfo"]).path)
        assert info.status_code == 200, api
        assert info.json()["type"]["artifact"] == api["type"]["artifact"], api
        doc = client.get(urlsplit(api["openapi"]).path)
        assert doc.status_code == 200 and "paths" in doc.json(), api
    for link in body["links"].values():
        assert client.get(urlsplit(link).path).status_code == 200, link


def test_a_browser_gets_an_escaped_html_page_whose_links_work(client, registered):
    r = client.get("/", headers={"Accept": BROWSER})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    page = r.text
    # names and descriptions are data: escaped, never markup
    assert "<b>cohort</b>" not in page and "Open &lt;b&gt;cohort&lt;/b&gt;" in page
    assert "x &lt; y &amp; &#34;z&#34;" in page
    for text in ("open1", "closed1", "empty1", "controlled", "GRCh38", "not public"):
        assert text in page
    assert "/beacon/v2" in page and "/ga4gh/wes/v1" in page and "/ga4gh/drs/v1" in page
    urls = links(page)
    targets = {urlsplit(link).path for link in urls}
    assert {"/docs", "/service-info", "/health/ready", "/openapi.json"} <= targets
    assert "/ga4gh/drs/v1/openapi.json" in targets and "/beacon/v2/service-info" in targets
    for link in urls:
        assert urlsplit(link).netloc in ("", "127.0.0.1:8080"), link  # nothing remote
        assert client.get(urlsplit(link).path).status_code == 200, link


def test_head_and_other_methods(client, registered):
    r = client.head("/", headers={"Accept": BROWSER})
    assert r.status_code == 200 and r.content == b"" and int(r.headers["content-length"]) > 0
    assert client.post("/").status_code in (404, 405)  # not a page: the APIs' routing answers


def test_an_empty_node_says_how_to_add_data(client):
    r = client.get("/", headers={"Accept": "text/html"})
    assert r.status_code == 200 and "genomeport dataset add" in r.text
    assert client.get("/").json()["datasets"] == []


def test_without_its_database_the_page_is_a_503_to_retry(tmp_path):
    from server.settings import Settings
    from server.web.app import create_app

    settings = Settings(
        var_dir=str(tmp_path / "var"),
        database_url="postgresql://postgres@127.0.0.1:1/none",  # nothing listens on port 1
        signing_key="k",
    )
    cx = create_app(settings, migrate=False)
    with cx.test_client() as c:
        for accept in (BROWSER, "application/json"):
            r = c.get("/", headers={"Accept": accept})
            assert r.status_code == 503 and r.headers["retry-after"], r.text
    cx.app.extensions["genomeport"].db.dispose()
