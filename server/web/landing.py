"""``/``: what this node serves, as an HTML page for a browser and as JSON for a program.

A newcomer who opens the node's address sees the APIs it serves (each with its
base URL, service-info and OpenAPI document), its datasets and where to go next
(``/docs``, readiness). A program gets the same description as JSON: it is
chosen whenever the ``Accept`` header does not prefer ``text/html``, so
``curl`` and API clients (no ``Accept``, ``*/*`` or ``application/json``) get JSON.

Datasets are listed with the metadata the Beacon's ``/datasets`` collection
already gives every caller (id, name, description, assembly, access level);
the number of files is shown for public datasets only, as a caller without
credentials could count those through htsget or DRS anyway.
"""

from __future__ import annotations

import asyncio
import json

import jinja2
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from server import __version__, service_info
from server.registry import file_counts, list_datasets

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("server.web", "templates"), autoescape=True
)
HTML_CSP = "default-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:"

_TEMPLATE = TEMPLATES.get_template("landing.html")


def wants_html(accept: str | None) -> bool:
    """True when the client prefers HTML to JSON (a browser); ties go to JSON."""
    offered = parse_accept_header(accept or "", MIMEAccept)
    return offered.best_match(["application/json", "text/html"]) == "text/html"


def describe(settings, db, documents) -> dict:
    """The node, its APIs (those whose document is served) and its datasets."""
    base = settings.public_url.rstrip("/")
    node = service_info.node_info(settings)
    apis = []
    for api in service_info.served_apis(set(documents)):
        info = service_info.api_info(settings, api)
        base_path = documents[service_info.DOCUMENTS[api]]
        apis.append(
            {
                "id": api,
                "name": info["name"],
                "type": info["type"],
                "url": info["url"],
                "serviceInfo": info["url"] + "/service-info",
                "openapi": f"{base}{base_path}/openapi.json",
            }
        )
    with db.session() as session:
        counts = file_counts(session)
        datasets = []
        for d in list_datasets(session):
            objects, files = counts.get(d.id, (0, 0)) if d.access == "public" else (None, None)
            datasets.append(
                {
                    "id": d.id,
                    "name": d.name or d.id,
                    "description": d.description,
                    "assembly": d.assembly,
                    "access": d.access,
                    "objects": objects,
                    "files": files,
                }
            )
    return {
        "name": node["name"],
        "description": node["description"],
        "version": __version__,
        "url": settings.public_url,
        "apis": apis,
        "datasets": datasets,
        "links": {
            "docs": f"{base}/docs",
            "dataAccess": f"{base}/portal",
            "serviceInfo": f"{base}/service-info",
            "fairDataPoint": f"{base}/fdp",
            "ready": f"{base}/health/ready",
        },
    }


async def respond(send, method: str, body: bytes, content_type: str, headers=()) -> None:
    """A 200 with ``body`` (none for HEAD)."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body if method == "GET" else b""})


class Landing:
    """ASGI app for ``GET /``; ``documents`` maps each served OpenAPI document
    (``htsget.yaml``) to its base path."""

    def __init__(self, settings, db, documents: dict[str, str]):
        self.settings, self.db, self.documents = settings, db, documents

    async def __call__(self, scope, receive, send) -> None:
        accept = dict(scope.get("headers") or []).get(b"accept", b"").decode("latin-1")
        description = await asyncio.to_thread(describe, self.settings, self.db, self.documents)
        vary = (b"vary", b"Accept")
        if wants_html(accept):
            page = _TEMPLATE.render(node=description, **description).encode()
            csp = (b"content-security-policy", HTML_CSP.encode())
            await respond(send, scope["method"], page, "text/html; charset=utf-8", [vary, csp])
        else:
            body = json.dumps(description).encode()
            await respond(send, scope["method"], body, "application/json", [vary])
