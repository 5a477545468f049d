"""DRS 1.5 handlers (thin: build the context, call server.drs.service)."""

from __future__ import annotations

from server.drs import service
from server.errors import InvalidInput
from server.web.context import current_caller, node


def _ctx(passports=None) -> service.DrsContext:
    if passports is not None and not isinstance(passports, list):
        raise InvalidInput("passports must be a list of JWT strings")
    n = node()
    caller = current_caller(passports=passports or None)
    return service.DrsContext(n.settings, n.db, caller)


def _body(body) -> dict:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


def get_service_info():
    n = node()
    return service.service_info(n.settings, n.db)


def get_object(object_id: str, expand: bool = False):
    return service.get_object(_ctx(), object_id, bool(expand))


def post_object(object_id: str, body=None):
    body = _body(body)
    return service.get_object(_ctx(body.get("passports")), object_id, bool(body.get("expand")))


def options_object(object_id: str):
    return service.options_object(_ctx(), object_id)


def _client_key() -> str | None:
    import flask

    return flask.request.headers.get("client-public-key")


def get_access_url(object_id: str, access_id: str):
    return service.access_url(_ctx(), object_id, access_id, _client_key())


def post_access_url(object_id: str, access_id: str, body=None):
    body = _body(body)
    return service.access_url(_ctx(body.get("passports")), object_id, access_id, _client_key())


def get_bulk_objects(body=None, expand: bool = False):
    body = _body(body)
    return service.bulk_objects(
        _ctx(body.get("passports")), body.get("bulk_object_ids"), bool(expand or body.get("expand"))
    )


def get_bulk_access_url(body=None):
    body = _body(body)
    return service.bulk_access(_ctx(body.get("passports")), body.get("bulk_object_access_ids"))


def options_bulk_object(body=None):
    body = _body(body)
    return service.options_bulk(_ctx(), body.get("bulk_object_ids"))
