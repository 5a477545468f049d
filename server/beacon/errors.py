"""Registers the Beacon error renderer: every error under /beacon is a
schema-valid ``beaconErrorResponse``."""

from __future__ import annotations

from server.beacon.service import error_document
from server.routing import RENDERERS


def render(exc, path: str) -> dict:
    settings = None
    try:
        from server.routing import node

        settings = node().settings
    except Exception:  # noqa: BLE001 - outside a request: default beacon id
        settings = None
    # 503 (database unavailable) says so; other server errors reveal nothing
    message = str(exc) if exc.status < 500 or exc.status == 503 else "internal error"
    return error_document(settings, exc.status, message)


RENDERERS["beacon"] = render
