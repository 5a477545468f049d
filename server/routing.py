"""Request context for handlers, and the one place error bodies are built.

``node()`` is the running node (settings, database, audit), ``current_caller()``
the authenticated caller of this request. ``render_error`` picks the API a path
belongs to and renders any exception in that API's own error shape; every
Connexion validation problem, unknown route and unexpected exception goes
through it, so no API ever answers ``application/problem+json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import flask
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from server import errors
from server.auth import ANONYMOUS, Caller
from server.auth.audit import append
from server.db import Database
from server.settings import Settings

logger = logging.getLogger(__name__)

# (path prefix, api) — first match wins
API_PREFIXES: tuple[tuple[str, str], ...] = (
    ("/reads", "htsget"),
    ("/variants", "htsget"),
    ("/data/", "htsget"),
    ("/beacon", "beacon"),
    ("/ga4gh/wes", "wes"),
    ("/ga4gh/drs", "drs"),
)

ERROR_MEDIA_TYPES = {"htsget": "application/json", "beacon": "application/json"}


def api_for_path(path: str) -> str:
    for prefix, api in API_PREFIXES:
        if path.startswith(prefix):
            return api
    return "node"


def _msg_status(exc: errors.ServiceError, path: str) -> dict:
    return {"msg": str(exc), "status_code": exc.status}


RENDERERS: dict[str, Callable[[errors.ServiceError, str], dict]] = {
    "htsget": lambda exc, path: {"htsget": {"error": exc.error, "message": str(exc)}},
    "wes": _msg_status,
    "drs": _msg_status,
    "node": _msg_status,
    # "beacon" is registered by server.beacon (beaconErrorResponse)
}


def error_body(exc: errors.ServiceError, path: str) -> tuple[dict, int]:
    api = api_for_path(path)
    renderer = RENDERERS.get(api, _msg_status)
    try:
        return renderer(exc, path), exc.status
    except Exception:  # noqa: BLE001 - a renderer must never turn an error into a 500 page
        logger.exception("error renderer for %s failed", api)
        return _msg_status(exc, path), exc.status


def error_response(
    exc: errors.ServiceError, path: str, headers: dict | None = None
) -> ConnexionResponse:
    body, status = error_body(exc, path)
    hdrs = {"Access-Control-Allow-Origin": "*"}
    hdrs.update(headers or {})
    return ConnexionResponse(
        status_code=status,
        body=json.dumps(body).encode(),
        mimetype="application/json",
        content_type="application/json",
        headers=hdrs,
    )


_STATUS_TO_ERROR = {
    400: errors.InvalidInput,
    401: errors.InvalidAuthentication,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.PayloadTooLarge,
    416: errors.RangeNotSatisfiable,
    429: errors.TooManyRequests,
    503: errors.ServiceUnavailable,
}


def database_unavailable(exc: BaseException) -> bool:
    """True for errors that mean the database cannot be reached or is not
    accepting work right now (server down or restarting, connection lost, pool
    exhausted, SQLite locked), as opposed to a bad statement or bad data.

    psycopg's ``OperationalError`` is exactly that class of errors (SQLSTATE
    classes 08, 53, 57, 58: connection, resources, operator intervention,
    system); SQLAlchemy wraps it, or raises its own pool and disconnect errors.
    """
    import sqlalchemy.exc as sa_exc

    if isinstance(exc, (sa_exc.TimeoutError, sa_exc.DisconnectionError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        psycopg = None
    if psycopg is not None and isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return True
    import sqlite3

    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "locked" in text or "busy" in text or "unable to open" in text
    return False


def as_service_error(exc: BaseException) -> errors.ServiceError:
    """Translate any exception into the hierarchy (unknown ones become 500)."""
    if isinstance(exc, errors.ServiceError):
        return exc
    if database_unavailable(exc):
        return errors.ServiceUnavailable("the database is unavailable; retry later")
    if isinstance(exc, UnicodeDecodeError):  # a handler decoding a body or parameter itself
        return errors.InvalidInput(f"request is not valid {exc.encoding}")
    if isinstance(exc, ProblemException):
        status = exc.status or 500
        detail = exc.detail or exc.title or "invalid request"
        if (
            status == 400
            and "json" in str(detail).lower()
            and not str(detail).startswith("request body")
        ):
            detail = f"request body is not valid JSON: {detail}"
        cls = _STATUS_TO_ERROR.get(status)
        if cls is None:
            if status == 405:
                err = errors.InvalidInput(f"method not allowed: {detail}")
                err.status = 405
                return err
            if status == 415:
                err = errors.InvalidInput(f"unsupported media type: {detail}")
                err.status = 415
                return err
            if 400 <= status < 500:
                err = errors.InvalidInput(str(detail))
                err.status = status
                return err
            return errors.ServiceError("internal error")
        return cls(str(detail))
    if isinstance(exc, HTTPException):
        cls = _STATUS_TO_ERROR.get(exc.status_code)
        if exc.status_code == 404:
            return errors.NotFound("no such resource")
        if exc.status_code == 405:
            err = errors.InvalidInput("method not allowed on this resource")
            err.status = 405
            return err
        if cls is not None:
            return cls(str(exc.detail))
        if 400 <= exc.status_code < 500:  # e.g. 406, 411, 431 from the frameworks
            err = errors.InvalidInput(str(exc.detail))
            err.status = exc.status_code
            return err
        return errors.ServiceError("internal error")
    return errors.ServiceError("internal error")


def handle_exception(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    err = as_service_error(exc)
    if isinstance(err, errors.ServiceUnavailable):
        logger.warning("%s %s -> 503: %s", request.method, request.url.path, type(exc).__name__)
    elif err.status >= 500:
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    else:
        logger.info("%s %s -> %s %s", request.method, request.url.path, err.status, err.error)
    headers = dict(getattr(err, "headers", None) or {})  # e.g. Retry-After of a 429
    if isinstance(err, errors.InvalidAuthentication):
        headers["WWW-Authenticate"] = 'Bearer realm="genomeport"'
    if isinstance(err, errors.ServiceUnavailable):
        headers["Retry-After"] = str(err.retry_after)
    return error_response(err, request.url.path, headers)


def register_error_handlers(cx_app) -> None:
    cx_app.add_error_handler(errors.ServiceError, handle_exception)
    cx_app.add_error_handler(ProblemException, handle_exception)
    cx_app.add_error_handler(HTTPException, handle_exception)
    for status in (400, 401, 403, 404, 405, 406, 413, 415, 500, 503):
        cx_app.add_error_handler(status, handle_exception)
    cx_app.add_error_handler(Exception, handle_exception)


# ---------------------------------------------------------------- the node
@dataclass
class Node:
    settings: Settings
    db: Database

    def audit(self, *, caller: Caller | None = None, **row) -> None:
        """Append one audit row for this request's caller (``server.auth.audit.append``)."""
        if caller is None:
            caller = current_caller() if flask.has_request_context() else ANONYMOUS
        append(self.db, caller=caller.label, **row)


def node() -> Node:
    return flask.current_app.extensions["genomeport"]


def current_caller(passports: list[str] | None = None) -> Caller:
    """The caller of this request, validated once and cached on ``flask.g``.

    ``passports`` (DRS POST bodies) are validated in addition to the header.
    """
    if passports is None and "genomeport_caller" in flask.g:
        return flask.g.genomeport_caller
    header = flask.request.headers.get("Authorization")
    caller = caller_from_header(node().settings, header, passports=passports)
    if passports is None:
        flask.g.genomeport_caller = caller
    return caller


def caller_from_header(settings: Settings, header: str | None, *, passports=None) -> Caller:
    if not header and not passports:
        return ANONYMOUS
    try:
        from server.auth.tokens import caller_from_request
    except ImportError:  # pragma: no cover - token validation not installed
        return Caller(error="token validation is not available")
    try:
        return caller_from_request(settings, header, passports=passports)
    except Exception as exc:  # noqa: BLE001 - fail closed
        logger.warning("token validation failed: %s", type(exc).__name__)
        return Caller(error="token could not be validated")
