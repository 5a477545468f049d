"""``/docs``: Swagger UI for every API, every byte of it served by the node itself."""

import json
import re
from urllib.parse import urljoin, urlsplit

from server.web.apis import APIS
from tests.unit.web.pages import BROWSER, links


def local(url: str) -> str:
    """The path of ``url`` on the node; fails for a URL naming another host."""
    parts = urlsplit(urljoin("http://127.0.0.1:8080/docs", url))
    assert parts.netloc == "127.0.0.1:8080", f"{url} is not the node's own"
    return parts.path


def test_docs_loads_only_the_nodes_own_assets(client):
    r = client.get("/docs", headers={"Accept": BROWSER})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src" not in csp  # no inline or remote script
    urls = links(r.text)
    scripts = [u for u in urls if u.endswith(".js")]
    assert len(scripts) == 3 and any(u.endswith("swagger-ui.css") for u in urls)
    assert "<script>" not in r.text  # every script is a file the CSP allows
    for url in urls:
        asset = client.get(local(url))
        assert asset.status_code == 200 and asset.content, url
    # nothing in the start-up script or the styles names another host
    for url in scripts[-1:] + [u for u in urls if u.endswith(".css")]:
        body = client.get(local(url)).text
        assert not re.findall(r"https?://(?!www\.w3\.org/2000/svg)", body), url
    init = client.get(local(scripts[-1])).text
    assert "validatorUrl: null" in init  # no badge fetched from validator.swagger.io


def test_the_selector_lists_every_api_document(client):
    init_js = next(u for u in links(client.get("/docs").text) if u.endswith("init.js"))
    init = client.get(local(init_js)).text
    urls = json.loads(re.search(r"urls: (\[.*?\]),\n", init).group(1))
    assert [u["name"] for u in urls] == [
        document.removesuffix(".yaml") for document in (api.document for api in APIS)
    ]
    for entry in urls:
        r = client.get(local(entry["url"]))
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        doc = r.json()
        assert doc["openapi"].startswith("3.") and doc["paths"], entry
    served = client.get("/ga4gh/wes/v1/openapi.json").json()
    assert client.get(local(urls[3]["url"])).json() == served  # the same document as its API's


def test_service_info_and_wes_point_to_pages_that_exist(client):
    doc_url = client.get("/service-info").json()["documentationUrl"]
    r = client.get(local(doc_url))
    assert r.status_code == 200 and "swagger-ui" in r.text
    auth = client.get("/ga4gh/wes/v1/service-info").json()["auth_instructions_url"]
    path, _, anchor = auth.partition("#")
    page = client.get(local(path)).text
    assert anchor and f'id="{anchor}"' in page and "Authorization: Bearer" in page


def test_unknown_docs_paths_are_404_not_files_of_the_package(client):
    for path in (
        "/docs/assets/index.html",
        "/docs/assets/swagger-initializer.js",
        "/docs/assets/..%2f__init__.py",
        "/docs/openapi/nothing.json",
        "/docs/elsewhere",
    ):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["status_code"] == 404, path
