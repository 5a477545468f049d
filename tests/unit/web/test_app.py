"""The node is wired from one table: a missing document, handler module or handler
function stops it at start-up, naming what is missing; the accelerations switch off."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

import handlers.htsget
from server.settings import SettingsError
from server.web.apis import APIS
from server.web.app import OPENAPI_DIR, WiringError, check_wiring, create_app


def test_a_missing_document_stops_the_node_naming_it(settings, tmp_path):
    copy = tmp_path / "openapi"
    shutil.copytree(OPENAPI_DIR, copy)
    create_app(settings, openapi_dir=copy).app.extensions["genomeport"].db.dispose()  # complete
    (copy / "beacon.yaml").unlink()
    with pytest.raises(WiringError, match=r"API 'beacon': OpenAPI document .*beacon\.yaml"):
        create_app(settings, openapi_dir=copy)


def test_a_missing_handler_function_stops_the_node_naming_it(settings, monkeypatch):
    monkeypatch.delattr(handlers.htsget, "search_read_id")
    with pytest.raises(WiringError, match=r"searchReadId -> handlers\.htsget\.search_read_id"):
        create_app(settings)
    # the contract test's check fails the same way
    with pytest.raises(WiringError, match="search_read_id"):
        check_wiring(next(api for api in APIS if api.name == "htsget"), OPENAPI_DIR)


def test_a_missing_handler_module_stops_the_node_naming_it():
    api = dataclasses.replace(APIS[1], handlers="handlers.no_such_api")
    with pytest.raises(WiringError, match=r"handler module handlers\.no_such_api is missing"):
        check_wiring(api, OPENAPI_DIR)


def test_a_security_requirement_in_a_document_stops_the_node_naming_it(tmp_path):
    # Connexion's security middleware is not in the stack: a requirement would
    # be silently unenforced, so the node refuses to start with one.
    import yaml

    copy = tmp_path / "openapi"
    shutil.copytree(OPENAPI_DIR, copy)
    api = next(api for api in APIS if api.name == "htsget")
    check_wiring(api, copy)  # as shipped: no requirement
    spec = yaml.safe_load((copy / "htsget.yaml").read_text())
    spec["paths"]["/reads/{id}"]["get"]["security"] = [{"bearer": []}]
    (copy / "htsget.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(WiringError, match=r"htsget\.yaml declares a security requirement \(GET"):
        check_wiring(api, copy)
    del spec["paths"]["/reads/{id}"]["get"]["security"]
    spec["security"] = [{"bearer": []}]
    (copy / "htsget.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(WiringError, match="document-wide"):
        check_wiring(api, copy)


def test_connexion_runs_routing_and_request_validation_only_where_they_act():
    from connexion.middleware.request_validation import RequestValidationMiddleware
    from connexion.middleware.routing import RoutingMiddleware
    from connexion.middleware.security import SecurityMiddleware
    from connexion.middleware.swagger_ui import SwaggerUIMiddleware

    from server.web.app import MIDDLEWARES

    assert RoutingMiddleware in MIDDLEWARES and RequestValidationMiddleware in MIDDLEWARES
    assert SecurityMiddleware not in MIDDLEWARES and SwaggerUIMiddleware not in MIDDLEWARES


def test_every_api_of_the_table_is_served(client):
    for api in APIS:
        assert client.get(f"{api.base_path}/openapi.json").status_code == 200, api.name


def test_without_accelerations_the_node_answers_the_same(settings, db):
    from server.registry import add_dataset

    add_dataset(db, "pub", access="public")
    answers = {}
    for accel in ("none", settings.accel):
        cx = create_app(settings.with_overrides(accel=accel))
        try:
            with cx.test_client() as c:
                answers[accel] = [
                    (r.status_code, r.json())
                    for r in (
                        c.get("/reads/nope"),
                        c.get("/reads/nope", params={"start": "x"}),
                        c.get("/beacon/v2/g_variants", params={"requestedGranularity": "boolean"}),
                        c.get("/ga4gh/drs/v1/objects/nope"),
                    )
                ]
        finally:
            cx.app.extensions["genomeport"].db.dispose()
    fast, plain = answers[settings.accel], answers["none"]
    assert [s for s, _ in fast] == [404, 400, 200, 404]
    for (s1, b1), (s2, b2) in zip(fast, plain, strict=True):
        assert s1 == s2
        if "meta" not in b1:  # a Beacon answer names the time it was made
            assert b1 == b2


def test_an_unknown_acceleration_is_refused(settings):
    with pytest.raises(SettingsError, match="unknown acceleration.*zerocpy"):
        create_app(settings.with_overrides(accel="zerocopy,zerocpy"))
