"""FAIR Data Point handlers (openapi/fdp.yaml): negotiate, call server.catalogue, return."""

from __future__ import annotations

import flask
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from server import service_info
from server.catalogue import service
from server.web.context import node


def _media(format_: str | None) -> str:
    """The serialization asked for: ``format`` first, then the Accept header
    (Turtle when it accepts anything, or says nothing)."""
    if format_:
        return service.FORMATS[format_]
    header = flask.request.headers.get("Accept", "")
    if not header.strip():
        return "text/turtle"
    accept = parse_accept_header(header, MIMEAccept)
    best = accept.best_match(list(service.MEDIA))
    if best is None:
        raise service.NotAcceptable(
            f"no RDF serialization matches Accept: {header[:100]}; "
            f"offered: {', '.join(service.MEDIA)}"
        )
    return best


def _answer(kind: str, *args: str, format_: str | None = None):
    n = node()
    with n.db.session() as session:
        body, content_type = service.respond(session, n.settings, kind, args, _media(format_))
    return flask.Response(body, status=200, content_type=content_type, headers={"Vary": "Accept"})


def get_service_info():
    return service_info.api_info(node().settings, "fdp")


def get_root(format_=None):
    return _answer("root", format_=format_)


def get_catalog(catalog_id, format_=None):
    return _answer("catalog", catalog_id, format_=format_)


def get_dataset(dataset_id, format_=None):
    return _answer("dataset", dataset_id, format_=format_)


def get_distribution(dataset_id, api, format_=None):
    return _answer("distribution", dataset_id, api, format_=format_)


def get_data_service(api, format_=None):
    return _answer("dataservice", api, format_=format_)


def get_profile(level, format_=None):
    return _answer("profile", level, format_=format_)


def get_shapes(level, format_=None):
    return _answer("shapes", level, format_=format_)
