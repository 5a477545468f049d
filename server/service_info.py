"""GA4GH service-info 1.0 objects for the node and for each API it serves."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from server import __version__
from server.settings import Settings

CREATED = "2026-11-01T00:00:00Z"

# api -> (artifact, spec version, path under the node, name)
SERVICES: dict[str, tuple[str, str, str, str]] = {
    "htsget-reads": ("htsget", "1.3.0", "/reads", "genomeport htsget (reads)"),
    "htsget-variants": ("htsget", "1.3.0", "/variants", "genomeport htsget (variants)"),
    "beacon": ("beacon", "2.0.0", "/beacon/v2", "genomeport Beacon v2"),
    "wes": ("wes", "1.1.0", "/ga4gh/wes/v1", "genomeport WES"),
    "drs": ("drs", "1.5.0", "/ga4gh/drs/v1", "genomeport DRS"),
    "fdp": ("fdp", "1.2.0", "/fdp", "genomeport FAIR Data Point"),
}
# the group of each artifact that is not a GA4GH standard
GROUPS = {"fdp": "org.fairdatapoint"}
# which OpenAPI document serves each
DOCUMENTS = {
    "htsget-reads": "htsget.yaml",
    "htsget-variants": "htsget.yaml",
    "beacon": "beacon.yaml",
    "wes": "wes.yaml",
    "drs": "drs.yaml",
    "fdp": "fdp.yaml",
}


def node_id(settings: Settings) -> str:
    host = urlsplit(settings.public_url).hostname or "localhost"
    return ".".join(reversed(host.split("."))) + ".genomeport"


def _common(settings: Settings) -> dict:
    return {
        "organization": {"name": "genomeport node", "url": settings.public_url},
        "contactUrl": "mailto:dataops@localhost",
        "documentationUrl": f"{settings.public_url}/docs",
        "createdAt": CREATED,
        "updatedAt": CREATED,
        "environment": "dev" if settings.public_url.startswith("http://127.") else "prod",
        "version": __version__,
    }


def node_info(settings: Settings) -> dict:
    return {
        "id": node_id(settings),
        "name": "genomeport",
        "type": {"group": "org.ga4gh", "artifact": "service-registry", "version": "1.0.0"},
        "description": (
            "GA4GH node: htsget, Beacon v2, WES and DRS behind one access-control model."
        ),
        **_common(settings),
    }


def api_info(settings: Settings, api: str) -> dict:
    artifact, version, path, name = SERVICES[api]
    return {
        "id": f"{node_id(settings)}.{api}",
        "name": name,
        "type": {
            "group": GROUPS.get(api, "org.ga4gh"),
            "artifact": artifact,
            "version": version,
        },
        "description": f"{name} served by this node.",
        "url": settings.public_url.rstrip("/") + path,
        **_common(settings),
    }


def served_apis(available_documents: set[str]) -> list[str]:
    return [api for api, doc in DOCUMENTS.items() if doc in available_documents]


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
