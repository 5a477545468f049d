"""Handlers marked reads_request are still Connexion operations, called leanly."""

from __future__ import annotations

import flask
import pytest

from server.invocation import LeanOperation, reads_request


def test_ticket_handlers_use_lean_invocation_after_connexion_registers_them(app, client):
    assert client.get("/service-info").status_code == 200  # Connexion builds its stack
    lean = {view.operation_id for view in app.app.view_functions.values() if isinstance(view, LeanOperation)}
    assert lean == {"handlers.htsget.search_read_id", "handlers.htsget.search_variant_id",
                    "handlers.htsget.search_read_id_post", "handlers.htsget.search_variant_id_post"}


def test_connexion_still_validates_and_routes_marked_operations(client):
    # the OpenAPI document's schema (integer) is enforced before the handler runs
    r = client.get("/reads/anything", params={"start": "one"})
    assert r.status_code == 400 and r.json()["htsget"]["error"] == "InvalidInput"
    assert client.get("/reads/none-such").status_code == 404
    r = client.post("/reads/none-such", content=b'{"format": 7}', headers={"Content-Type": "application/json"})
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
    Op._fn = staticmethod(reads_request(lambda id_: {"not": "a response"}))
    with pytest.raises(TypeError):
        LeanOperation(Op())(id="x")
