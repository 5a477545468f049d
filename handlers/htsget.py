"""htsget 1.3 handlers: parse, delegate to ``server.htsget.service``, wrap the ticket."""

from __future__ import annotations

import json

import flask

from server.htsget import service
from server.web.context import current_caller, node


def _context() -> service.Context:
    n = node()
    return service.Context(settings=n.settings, db=n.db, caller=current_caller())


def _ticket(request: service.TicketRequest) -> flask.Response:
    body = service.ticket(_context(), request, flask.request.headers.get("client-public-key"))
    return flask.Response(
        json.dumps(body, separators=(",", ":")), status=200, mimetype=service.MEDIA_TYPE
    )


def _get(endpoint: str, object_id: str) -> flask.Response:
    return _ticket(service.parse_get(endpoint, object_id, flask.request.args.to_dict()))


def _post(endpoint: str, object_id: str) -> flask.Response:
    raw = flask.request.get_data(cache=True)
    return _ticket(service.parse_post(endpoint, object_id, raw, flask.request.args.to_dict()))


def reads_service_info():
    return service.service_info(node().settings, "reads")


def variants_service_info():
    return service.service_info(node().settings, "variants")


# The ticket handlers read the query or body themselves (server.htsget.service
# parses it as the specification words it); Connexion has already checked it
# against the OpenAPI document. They take their path parameter alone: with no
# **kwargs in the signature, Connexion passes nothing else, so it does not
# convert every query parameter a second time for arguments nobody reads.
def search_read_id(id_):
    return _get("reads", id_)


def search_variant_id(id_):
    return _get("variants", id_)


def search_read_id_post(id_):
    return _post("reads", id_)


def search_variant_id_post(id_):
    return _post("variants", id_)
