"""Handlers marked reads_request are still Connexion operations, called leanly."""

from __future__ import annotations

import flask
import pytest

from server.web.accel.invocation import LeanOperation, reads_request


def test_ticket_and_beacon_entry_handlers_use_lean_invocation(app, client):
    assert client.get("/service-info").status_code == 200  # Connexion builds its stack
    lean = {
        view.operation_id
        for view in app.app.view_functions.values()
        if isinstance(view, LeanOperation)
    }
    htsget = {
        "handlers.htsget.search_read_id",
        "handlers.htsget.search_variant_id",
        "handlers.htsget.search_read_id_post",
        "handlers.htsget.search_variant_id_post",
    }
    beacon = {op for op in lean if op.startswith("handlers.beacon.")}
    assert lean == htsget | beacon
    # every entry endpoint, GET and POST (list, one, and the cross-entry links)
    for name in (
        "get_g_variants",
        "post_g_variants",
        "get_one_individuals",
        "post_one_individuals",
        "get_individuals_g_variants",
        "post_g_variants_biosamples",
    ):
        assert f"handlers.beacon.{name}" in beacon
    # the framework endpoints keep Connexion's usual invocation
    assert "handlers.beacon.get_beacon_info" not in beacon


def test_lean_json_answers_are_serialised_as_connexion_serialises_them(app, client):
    import json

    r = client.get("/beacon/v2/g_variants", params={"requestedGranularity": "boolean"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    view = next(
        v
        for v in app.app.view_functions.values()
        if isinstance(v, LeanOperation) and v.operation_id == "handlers.beacon.get_g_variants"
    )
    assert r.content.decode() == view.operation.jsonifier.dumps(body)
    assert r.content.decode() == json.dumps(body, indent=2, sort_keys=True) + "\n"


def test_lean_beacon_post_reads_its_body_and_connexion_rejects_bad_json(client):
    q = {"meta": {"apiVersion": "v2.0"}, "query": {"requestedGranularity": "boolean"}}
    r = client.post("/beacon/v2/g_variants", json=q)
    assert r.status_code == 200 and r.json()["meta"]["returnedGranularity"] == "boolean"
    r = client.post(
        "/beacon/v2/g_variants", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    r = client.post("/beacon/v2/g_variants", json=[1, 2])
    assert r.status_code == 400


def test_connexion_still_validates_and_routes_marked_operations(client):
    # the OpenAPI document's schema (integer) is enforced before the handler runs
    r = client.get("/reads/anything", params={"start": "one"})
    assert r.status_code == 400 and r.json()["htsget"]["error"] == "InvalidInput"
    assert client.get("/reads/none-such").status_code == 404
    r = client.post(
        "/reads/none-such", content=b'{"format": 7}', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert client.delete("/reads/none-such").status_code == 405


def test_lean_operation_passes_pythonic_path_parameters_and_wants_a_response():
    class Op:  # the two attributes LeanOperation reads from Connexion's FlaskOperation
        operation_id = "demo"

        @staticmethod
        @reads_request
        def _fn(id_):
            return flask.Response(id_)

    assert LeanOperation(Op())(id="x").get_data() == b"x"
    Op._fn = staticmethod(reads_request(lambda id_: "neither a response nor JSON"))
    with pytest.raises(TypeError):
        LeanOperation(Op())(id="x")
