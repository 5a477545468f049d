"""``/docs`` in headless Chromium: Swagger UI renders every API from the node alone.

Chromium records every request it makes (``--log-net-log``) while host
resolution for any name but the node's address fails, so a page that needed a
CDN would neither render nor go unnoticed: every request the page makes must
go to the node. The rendered DOM must show the
operations of the document Swagger UI opens first, and the selector must list
all eight documents.
"""

from __future__ import annotations

import json
import re
import subprocess
from urllib.parse import urlsplit


def requested_urls(net_log, origin: str) -> set[str]:
    """Every URL a page of ``origin`` asked for, from a Chromium net log (the
    browser's own traffic, such as its updater, has no page as initiator)."""
    text = net_log.read_text()
    try:
        events = json.loads(text).get("events", [])
    except json.JSONDecodeError:  # a log cut short when Chromium exits: no closing brackets
        events = [json.loads(line.rstrip(",")) for line in text.splitlines() if line[:2] == '{"']
    urls = set()
    for event in events:
        params = event.get("params") or {}
        if params.get("initiator") == origin and isinstance(params.get("url"), str):
            urls.add(params["url"])
    return urls


def test_docs_render_every_api_without_a_remote_asset(chromium, tmp_path):
    from server.settings import Settings
    from server.web.apis import APIS
    from tests.conftest import start_server, stop_server

    settings = Settings(var_dir=str(tmp_path / "var"), signing_key="docs-browser-key")
    node = start_server(settings)
    net_log = tmp_path / "net.json"
    try:
        out = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                f"--log-net-log={net_log}",
                f"--user-data-dir={tmp_path / 'chrome'}",
                "--virtual-time-budget=20000",
                "--dump-dom",
                f"{node.url}/docs",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        stop_server(node)
    dom = out.stdout
    assert "swagger-ui" in dom, out.stderr[-2000:]
    # the first document's operations are drawn (one "opblock" per operation)
    assert len(re.findall(r'class="opblock opblock-', dom)) >= 1, dom[-2000:]
    for api in APIS:
        assert api.document.removesuffix(".yaml") in dom
    urls = requested_urls(net_log, node.url)
    assert any(u.endswith("swagger-ui-bundle.js") for u in urls), sorted(urls)
    assert any(u.endswith(".json") for u in urls), sorted(urls)  # the document it opened
    remote = sorted(u for u in urls if urlsplit(u).netloc != urlsplit(node.url).netloc)
    assert not remote, remote
