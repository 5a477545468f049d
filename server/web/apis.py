"""The one table of the node's APIs: what is served, where, by whom, in which error shape.

Each ``Api`` names its OpenAPI document in ``openapi/``, the base path it is
served under, the ``handlers`` module whose functions its operationIds name
(``searchReadId`` -> ``handlers.htsget.search_read_id``), the path prefixes it
answers (for error shapes and metrics) and its error renderer. Adding an API
is one row here, a document and a handler module; ``server.web.app`` refuses
to start when any of them is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from server import errors
from server.web.errors import render_beacon, render_htsget, render_status


@dataclass(frozen=True)
class Api:
    name: str
    document: str  # file name in the OpenAPI directory
    base_path: str  # "" serves the document's paths at the root
    handlers: str  # module holding one function per operationId
    prefixes: tuple[str, ...]  # request paths that belong to this API
    render: Callable[[errors.ServiceError, str], dict]


APIS: tuple[Api, ...] = (
    Api("node", "service-info.yaml", "", "handlers.service_info", (), render_status),
    Api(
        "htsget",
        "htsget.yaml",
        "",
        "handlers.htsget",
        ("/reads", "/variants", "/data/"),  # the data plane answers in htsget's shape
        render_htsget,
    ),
    Api("beacon", "beacon.yaml", "/beacon/v2", "handlers.beacon", ("/beacon",), render_beacon),
    Api("wes", "wes.yaml", "/ga4gh/wes/v1", "handlers.wes", ("/ga4gh/wes",), render_status),
    Api("drs", "drs.yaml", "/ga4gh/drs/v1", "handlers.drs", ("/ga4gh/drs",), render_status),
    Api("access", "access.yaml", "/access", "handlers.access", ("/access",), render_status),
    Api("fdp", "fdp.yaml", "/fdp", "handlers.fdp", ("/fdp",), render_status),
    Api("inbox", "inbox.yaml", "/inbox", "handlers.inbox", ("/inbox",), render_status),
)

NODE = APIS[0]  # paths of no API (health, metrics, unknown) are the node's own


def api_for_path(path: str) -> Api:
    for api in APIS:
        if path.startswith(api.prefixes):
            return api
    return NODE
