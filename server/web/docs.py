"""``/docs``: the OpenAPI documents of every API, browsable in Swagger UI.

Swagger UI comes from the ``swagger-ui-bundle`` package and is served by the
node itself (``/docs/assets/...``), so the page works on a network without
Internet access and no request leaves the node's origin: the page's
Content-Security-Policy allows only the node's own scripts, styles and
documents (and ``data:`` images, which Swagger UI's icons are). Its start-up
script is a file of its own, not an inline script, and turns off the
validator badge (a request to validator.swagger.io).

Each document is served at ``/docs/openapi/<name>.json`` as ``<base>/openapi.json``
serves it (the node's service-info document has no ``openapi.json`` of its
own: htsget's takes the root path). The section ``#authentication`` is where
the WES ``auth_instructions_url`` points.
"""

from __future__ import annotations

import asyncio
import functools
import json

from swagger_ui_bundle import swagger_ui_path

from server import errors
from server.web.errors import error_body
from server.web.landing import TEMPLATES, Landing, respond
from server.web.portal import PREFIX as PORTAL
from server.web.portal import Portal

PREFIX = "/docs"
# the Swagger UI files the page loads, and the source maps they name
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "index.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
    "swagger-ui-bundle.js.map": "application/json",
    "swagger-ui-standalone-preset.js.map": "application/json",
    "swagger-ui.css.map": "application/json",
}
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "font-src 'self' data:; frame-ancestors 'self'"
)

_PAGE = TEMPLATES.get_template("docs.html")

_INIT = """window.ui = SwaggerUIBundle({
  urls: %s,
  "urls.primaryName": %s,
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout"
});
"""


class Docs:
    """ASGI app for ``/docs`` and everything under it.

    ``documents`` maps a document's name (``htsget``) to its JSON bytes, in the
    order the selector lists them.
    """

    def __init__(self, settings, documents: dict[str, bytes]):
        self.documents = documents
        urls = [{"name": name, "url": f"{PREFIX}/openapi/{name}.json"} for name in documents]
        self.init = (_INIT % (json.dumps(urls), json.dumps(next(iter(documents), "")))).encode()
        issuers = [str(i.get("issuer", "")) for i in settings.auth_issuers if isinstance(i, dict)]
        self.page = _PAGE.render(node=settings.public_url, prefix=PREFIX, issuers=issuers).encode()
        self.assets: dict[str, bytes] = {}

    def asset(self, name: str) -> bytes:
        if name not in self.assets:
            self.assets[name] = (swagger_ui_path / name).read_bytes()
        return self.assets[name]

    async def __call__(self, scope, receive, send) -> None:
        path, method = scope["path"], scope["method"]
        rest = path[len(PREFIX) :]
        name = rest.rpartition("/")[2]
        csp = (b"content-security-policy", CSP.encode())
        if rest in ("", "/"):
            await respond(send, method, self.page, "text/html; charset=utf-8", [csp])
        elif rest == "/init.js":
            await respond(send, method, self.init, "text/javascript; charset=utf-8")
        elif rest == f"/assets/{name}" and name in ASSETS:
            cache = (b"cache-control", b"public, max-age=86400")
            await respond(send, method, self.asset(name), ASSETS[name], [cache])
        elif rest == f"/openapi/{name}" and name.removesuffix(".json") in self.documents:
            body = self.documents[name.removesuffix(".json")]
            cors = (b"access-control-allow-origin", b"*")
            await respond(send, method, body, "application/json", [cors])
        else:
            body, status = error_body(errors.NotFound(f"no documentation page {path}"), path)
            payload = json.dumps(body).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": payload})


class Pages:
    """The node's pages for people, beside its APIs: ``/``, ``/docs`` and the
    data access pages under ``/portal`` (``server.web.portal``).

    The documents behind ``/docs`` are read on its first request (in a thread),
    not when the app is built: parsing them takes about a second.
    """

    def __init__(self, settings, db, apis, openapi_dir):
        self.settings = settings
        self.apis, self.openapi_dir = apis, openapi_dir
        self.landing = Landing(settings, db, {api.document: api.base_path for api in apis})
        self.portal = Portal(settings, db)

    @functools.cached_property
    def docs(self) -> Docs:
        from server.web.ops import openapi_documents

        documents = {}
        for api in self.apis:
            (body,) = openapi_documents([api], self.openapi_dir).values()
            documents[api.document.rsplit(".", 1)[0]] = body
        return Docs(self.settings, documents)

    def app_for(self, scope):
        """The ASGI app of the page ``scope`` asks for, or None (not a page)."""
        path = scope["path"]
        if path == PORTAL or path.startswith(PORTAL + "/"):
            return self.portal if scope["method"] in ("GET", "HEAD", "POST") else None
        if scope["method"] not in ("GET", "HEAD"):
            return None
        if path == "/":
            return self.landing
        if path == PREFIX or path.startswith(PREFIX + "/"):
            return self.serve_docs
        return None

    async def serve_docs(self, scope, receive, send) -> None:
        docs = await asyncio.to_thread(lambda: self.docs)  # the first call parses, off the loop
        await docs(scope, receive, send)
