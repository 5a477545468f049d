"""The node's own service-info and the GA4GH Service Registry."""

from __future__ import annotations

from server import service_info
from server.errors import NotFound
from server.web.apis import APIS
from server.web.context import node


def _served() -> list[str]:
    return service_info.served_apis({api.document for api in APIS})


def get_service_info():
    return service_info.node_info(node().settings)


def get_services():
    settings = node().settings
    return [service_info.api_info(settings, api) for api in _served()]


def get_service_by_id(service_id: str):
    settings = node().settings
    for api in _served():
        info = service_info.api_info(settings, api)
        if info["id"] == service_id:
            return info
    raise NotFound(f"no service with id {service_id!r}")


def get_service_types():
    settings = node().settings
    seen, types = set(), []
    for api in _served():
        t = service_info.api_info(settings, api)["type"]
        key = (t["group"], t["artifact"], t["version"])
        if key not in seen:
            seen.add(key)
            types.append(t)
    return types
