"""The one place error bodies are built: one renderer per API.

Each API of ``server.web.apis.APIS`` names its renderer here: ``render_htsget``
(``{"htsget": {"error", "message"}}``), ``render_beacon`` (a schema-valid
``beaconErrorResponse``), ``render_status`` (``{"msg", "status_code"}``: WES,
DRS and the node's own endpoints). ``error_body`` picks the API a path belongs
to and renders any ``ServiceError`` in that API's shape; every Connexion
validation problem, unknown route and unexpected exception goes through
``handle_exception``, so no API ever answers ``application/problem+json``.
"""

from __future__ import annotations

import json
import logging
import sqlite3

import flask
import psycopg
import sqlalchemy.exc as sa_exc
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from server import errors

logger = logging.getLogger(__name__)


def render_status(exc: errors.ServiceError, path: str) -> dict:
    """WES, DRS and the node: ``{"msg": ..., "status_code": ...}``."""
    return {"msg": str(exc), "status_code": exc.status}


def render_htsget(exc: errors.ServiceError, path: str) -> dict:
    """htsget: ``{"htsget": {"error": <name>, "message": ...}}``."""
    return {"htsget": {"error": exc.error, "message": str(exc)}}


def render_beacon(exc: errors.ServiceError, path: str) -> dict:
    """Beacon v2: a ``beaconErrorResponse`` naming this node's beacon id."""
    from server.beacon.service import error_document

    # inside a request the node's own settings; outside one the default beacon id
    settings = None
    if flask.has_app_context():
        from server.web.context import node

        settings = node().settings
    # 503 (database unavailable) says so; other server errors reveal nothing
    message = str(exc) if exc.status < 500 or exc.status == 503 else "internal error"
    return error_document(settings, exc.status, message)


def error_body(exc: errors.ServiceError, path: str) -> tuple[dict, int]:
    """``(body, status)`` of ``exc`` in the error shape of the API ``path`` belongs to."""
    from server.web.apis import api_for_path

    api = api_for_path(path)
    try:
        return api.render(exc, path), exc.status
    except Exception:  # noqa: BLE001 - a renderer must never turn an error into a 500 page
        logger.exception("error renderer for %s failed", api.name)
        return render_status(exc, path), exc.status


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
    if isinstance(exc, (sa_exc.TimeoutError, sa_exc.DisconnectionError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return True
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
