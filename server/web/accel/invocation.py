"""A lean way to call handlers that read their own request.

For every request, Connexion's Flask operations rebuild their decorator chain
and marshal each parameter (Pythonic renaming with regular expressions, type
conversion, signature inspection) into keyword arguments. The htsget ticket
handlers ignore those arguments: ``server.htsget.service`` parses and checks
the query or body itself, as the specification words it. For such handlers,
marked with :func:`reads_request`, that marshalling was a sizeable part of a
ticket's latency.

A marked handler is still a Connexion operation: resolved by its operationId,
routed, and validated against its OpenAPI document by Connexion's middlewares
(parameters and body). Only the call itself changes: the handler receives
its path parameters (Pythonic names, as Connexion would pass them) and
returns a ``flask.Response``, or a JSON object or array, which is serialised
exactly as Connexion serialises a handler's answer (the operation's own
jsonifier) and sent with status 200.

This relies on Connexion's ``FlaskOperation`` keeping the handler at ``_fn``
and its ``jsonifier``, and on registering Flask views in
``FlaskASGIApp.add_api`` (``check_layout``). Without the ``invocation``
acceleration, a marked handler is called by Connexion as any other: it
receives the marshalled arguments too, and ignores them.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable

import flask
from connexion.apps.flask import FlaskASGIApp, FlaskOperation
from connexion.decorators.parameter import pythonic

from server.web.accel import require

logger = logging.getLogger(__name__)

_MARK = "__genomeport_reads_request__"


def reads_request(fn: Callable) -> Callable:
    """Mark a handler that takes only its path parameters and returns a Flask response.

    Such a handler reads its query and body itself; it must accept (and ignore)
    the keyword arguments Connexion passes when this acceleration is off.
    """
    setattr(fn, _MARK, True)
    return fn


def check_layout() -> None:
    """Connexion still keeps the handler at ``FlaskOperation._fn`` and registers
    the Flask views in ``FlaskASGIApp.add_api``."""
    init = inspect.getsource(FlaskOperation.__init__)
    require(
        "invocation",
        "connexion",
        "self._fn = fn" in init and "self.jsonifier = " in init,
        "FlaskOperation no longer keeps the handler at _fn and its jsonifier",
    )
    require(
        "invocation",
        "connexion",
        "add_api" in vars(FlaskASGIApp) and "add_url_rule" in inspect.getsource(FlaskASGIApp),
        "FlaskASGIApp no longer registers the Flask views in add_api",
    )


class LeanOperation:
    """Calls a marked handler with its path parameters only."""

    def __init__(self, operation: FlaskOperation):
        self.operation = operation
        self.operation_id = operation.operation_id
        self.fn = operation._fn
        functools.update_wrapper(self, self.fn)

    @staticmethod
    @functools.lru_cache(maxsize=256)
    def _name(name: str) -> str:
        return pythonic(name)

    def __call__(self, **view_args) -> flask.Response:
        response = self.fn(**{self._name(k): v for k, v in view_args.items()})
        if isinstance(response, flask.Response):
            return response
        if isinstance(response, (dict, list)):
            return flask.Response(
                self.operation.jsonifier.dumps(response), status=200, mimetype="application/json"
            )
        raise TypeError(
            f"{self.operation_id}: a reads_request handler must return a "
            "flask.Response or a JSON object or array"
        )


def _replace_views(flask_app) -> list[str]:
    installed = []
    for endpoint, view in list(flask_app.view_functions.items()):
        if isinstance(view, FlaskOperation) and getattr(view._fn, _MARK, False):
            flask_app.view_functions[endpoint] = LeanOperation(view)
            installed.append(view.operation_id)
    return installed


def install(cx_app) -> None:
    """Use ``LeanOperation`` for marked handlers of a Connexion ``FlaskApp``.

    Connexion registers an API's Flask views only when it builds its middleware
    stack (at start-up or on the first request), through the Flask side's
    ``add_api``; the views are replaced right after each such registration.
    """
    check_layout()
    inner = cx_app._middleware_app
    register = inner.add_api

    def add_api(specification, **kwargs):
        api = register(specification, **kwargs)
        installed = _replace_views(inner.app)
        if installed:
            logger.debug("lean invocation for %s", ", ".join(sorted(installed)))
        return api

    inner.add_api = add_api
