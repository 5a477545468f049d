"""Every API of the table has its document, the document loads offline, every
operationId has a handler (and every public handler function is named by some
operationId). A removed document or handler fails here, and the node refuses
to start (tests/unit/web/test_app.py shows both)."""

import importlib
import inspect

import pytest
import yaml

from server.web.apis import APIS
from server.web.app import HTTP_METHODS, OPENAPI_DIR, check_wiring, operation_ids, snake_case


def refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


@pytest.mark.parametrize("api", APIS, ids=[api.name for api in APIS])
def test_document_loads_offline_and_resolves(api):
    check_wiring(api, OPENAPI_DIR)  # the document, the module, a handler per operationId
    module = api.handlers
    spec = yaml.safe_load((OPENAPI_DIR / api.document).read_text())
    for path_item in spec["paths"].values():
        for method, op in path_item.items():
            if method in HTTP_METHODS:
                assert "operationId" in op, f"{method} operation without operationId"
    assert spec["openapi"].startswith("3.")
    for ref in refs(spec):
        assert not ref.startswith(("http:", "https:", "//")), f"remote $ref {ref}"
        if not ref.startswith("#"):
            target = ref.split("#", 1)[0]
            assert (OPENAPI_DIR / target).exists(), f"missing local $ref target {target}"
    handlers = importlib.import_module(module)
    ids = operation_ids(spec)
    assert ids
    public = {
        name
        for name, fn in inspect.getmembers(handlers, inspect.isfunction)
        if not name.startswith("_") and fn.__module__ == handlers.__name__
    }
    unused = public - {snake_case(i) for i in ids}
    assert not unused, f"handler functions not named by any operationId: {sorted(unused)}"


def test_every_api_document_is_served():
    expected = {
        "service-info.yaml",
        "htsget.yaml",
        "beacon.yaml",
        "wes.yaml",
        "drs.yaml",
        "access.yaml",
        "fdp.yaml",
        "inbox.yaml",
    }
    assert {api.document for api in APIS} == expected
    assert {path.name for path in OPENAPI_DIR.glob("*.yaml")} >= expected


def test_app_builds_with_every_document(client):
    # Connexion validates each document when the app starts; a request starts it
    assert client.get("/service-info").status_code == 200
