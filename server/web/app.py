"""The app factory: ``create_app(settings)`` builds one node.

The request path, outermost first (see ARCHITECTURE.md):

1. ``server.web.ops.OpsMiddleware``: request ids, access logs, metrics, health
   probes, the OpenAPI documents, body caps, the last line of error handling;
2. Starlette's ``CORSMiddleware``;
3. ``DataPlaneMount``: ``/data/...`` goes to ``server.web.dataplane.DataPlane``,
   a plain ASGI app, so bulk data never goes through the Flask adapter;
   everything else to
4. Connexion 3 (``FlaskApp``): routing and request validation against the
   OpenAPI documents (``server.web.validation``), then Flask and the handler.

Every API of ``server.web.apis.APIS`` is served from its document in
``openapi_dir``; each operationId resolves to the snake_case function of the
same name in the API's ``handlers`` module. A missing document, handler
module or handler function stops the node at start-up, naming what is
missing: a node never starts with an API silently left out.
"""

from __future__ import annotations

import importlib
import logging
import re
from pathlib import Path

import connexion
import flask
import yaml
from connexion.jsonifier import Jsonifier
from connexion.middleware import ConnexionMiddleware, MiddlewarePosition
from connexion.middleware.response_validation import ResponseValidationMiddleware
from connexion.middleware.security import SecurityMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from starlette.middleware.cors import CORSMiddleware

from server.db import Database
from server.settings import Settings
from server.web import accel, validation
from server.web.apis import APIS, Api
from server.web.context import Node
from server.web.dataplane import DataPlane
from server.web.errors import register_error_handlers
from server.web.ops import OpsMiddleware

logger = logging.getLogger(__name__)

OPENAPI_DIR = Path(__file__).resolve().parent.parent.parent / "openapi"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


# Handlers' JSON answers: Flask's JSON provider (Connexion's, so dates and
# decimals encode as before, keys sorted), written compact. Connexion's default
# indents by 2, which also forces the pure-Python encoder: a third of the web
# layer's cost of a Beacon count answer.
JSONIFIER = Jsonifier(flask.json)


# Connexion's middlewares, less the three that do nothing for this node but
# cost a route lookup per request: Swagger UI (``server.web.docs`` serves
# /docs, ``server.web.ops`` the documents), security (no operation declares a
# security requirement, ``check_wiring`` refuses one: every access decision
# is ``server.auth``'s) and response validation (``validate_responses`` is off).
# A tuple: Connexion inserts added middlewares into the list it is given, so
# every app gets a fresh list of its own.
MIDDLEWARES = tuple(
    m
    for m in ConnexionMiddleware.default_middlewares
    if m not in (SwaggerUIMiddleware, SecurityMiddleware, ResponseValidationMiddleware)
)


class WiringError(RuntimeError):
    """An API of the table cannot be served: its document or a handler is missing."""


def snake_case(name: str) -> str:
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return name.replace("-", "_").lower()


def operation_ids(spec: dict) -> list[str]:
    """Every operationId of an OpenAPI document, in document order."""
    return [
        op["operationId"]
        for path_item in spec.get("paths", {}).values()
        for method, op in path_item.items()
        if method in HTTP_METHODS and "operationId" in op
    ]


def check_wiring(api: Api, openapi_dir: Path) -> None:
    """Raise ``WiringError`` naming what ``api`` lacks: its document, its
    handler module, or a handler function for one of its operationIds."""
    path = Path(openapi_dir) / api.document
    if not path.is_file():
        raise WiringError(f"API {api.name!r}: OpenAPI document {path} is missing")
    spec = yaml.safe_load(path.read_text())
    try:
        module = importlib.import_module(api.handlers)
    except ModuleNotFoundError as exc:
        if exc.name != api.handlers:
            raise  # a module the handlers import is missing: that error, unchanged
        raise WiringError(f"API {api.name!r}: handler module {api.handlers} is missing") from exc
    secured = [
        f"{method.upper()} {route}"
        for route, path_item in spec.get("paths", {}).items()
        for method, op in path_item.items()
        if method in HTTP_METHODS and op.get("security")
    ]
    if spec.get("security") or secured:
        # Connexion's security middleware is not in the stack (MIDDLEWARES):
        # a requirement there would be silently unenforced, so none may exist.
        raise WiringError(
            f"API {api.name!r}: {path.name} declares a security requirement "
            f"({', '.join(secured) or 'document-wide'}); access is decided by server.auth, "
            "not by Connexion security handlers"
        )
    missing = [
        f"{op_id} -> {api.handlers}.{snake_case(op_id)}"
        for op_id in operation_ids(spec)
        if not callable(getattr(module, snake_case(op_id), None))
    ]
    if missing:
        raise WiringError(f"API {api.name!r}: no handler for " + ", ".join(missing))


class HandlerResolver(Resolver):
    """Maps an operationId to ``<module>.<snake_case(operationId)>``."""

    def __init__(self, module: str):
        super().__init__()
        self.module = module

    def resolve_operation_id(self, operation) -> str:
        return f"{self.module}.{snake_case(operation.operation_id)}"


# APIs whose root record is addressed without a trailing slash (the FAIR Data
# Point's root is ``/fdp``, the IRI its records name): served as ``<base>/``
BARE_ROOTS = frozenset({"/fdp"})


class DataPlaneMount:
    """Sends ``/data/...`` to the data plane, every other request to ``app``
    (a bare API root of ``BARE_ROOTS`` as its ``/`` path)."""

    def __init__(self, app, dataplane: DataPlane):
        self.app = app
        self.dataplane = dataplane

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("path", "").startswith("/data/"):
            await self.dataplane(scope, receive, send)
        else:
            if scope["type"] == "http" and scope.get("path") in BARE_ROOTS:
                scope = {**scope, "path": scope["path"] + "/", "raw_path": None}
            await self.app(scope, receive, send)


def create_app(
    settings: Settings, *, migrate: bool = True, openapi_dir: Path | str = OPENAPI_DIR
) -> connexion.FlaskApp:
    """The node for ``settings``, serving every API of ``APIS`` from ``openapi_dir``.

    Raises ``WiringError`` when a document or handler is missing, and
    ``server.web.accel.LayoutChanged`` when a dependency no longer fits an
    acceleration that ``settings.accel`` turns on.
    """
    openapi_dir = Path(openapi_dir)
    for api in APIS:
        check_wiring(api, openapi_dir)
    accels = accel.enabled(settings)

    Path(settings.var_dir).mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    if migrate:
        db.upgrade()

    cx = connexion.FlaskApp(
        __name__,
        specification_dir=str(openapi_dir),
        jsonifier=JSONIFIER,
        middlewares=list(MIDDLEWARES),
    )
    # A path with "//" names no route (404 in the API's own error shape); Werkzeug
    # would otherwise answer it with a redirect that no API documents.
    cx.app.url_map.merge_slashes = False
    cx.app.extensions["genomeport"] = Node(settings=settings, db=db)
    cx.app.config["MAX_CONTENT_LENGTH"] = None  # enforced by OpsMiddleware per API

    for api in APIS:
        cx.add_api(
            api.document,
            base_path=api.base_path or None,
            name=api.name,  # two documents share the root path
            resolver=HandlerResolver(api.handlers),
            pythonic_params=True,
            strict_validation=False,
            validate_responses=False,
            validator_map=validation.VALIDATOR_MAP,
            uri_parser_class=validation.URI_PARSER,
            # no bundled Swagger UI; server.web.ops serves the documents as JSON
            swagger_ui_options=SwaggerUIOptions(swagger_ui=False, serve_spec=False),
        )
    register_error_handlers(cx)

    # Outermost first: ops (ids, logs, metrics, caps), CORS, then the data plane.
    cx.add_middleware(
        OpsMiddleware,
        MiddlewarePosition.BEFORE_EXCEPTION,
        settings=settings,
        db=db,
        apis=APIS,
        openapi_dir=openapi_dir,
    )
    cx.add_middleware(
        CORSMiddleware,
        MiddlewarePosition.BEFORE_EXCEPTION,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "HEAD", "OPTIONS", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Range", "X-Request-ID"],
        expose_headers=["Content-Length", "Content-Range", "Accept-Ranges", "X-Request-ID"],
        max_age=600,
    )
    cx.add_middleware(
        DataPlaneMount,
        MiddlewarePosition.BEFORE_EXCEPTION,
        dataplane=DataPlane(settings, db, zerocopy="zerocopy" in accels),
    )
    return cx


def asgi_from_env():
    """Entry point for gunicorn: ``server.web.app:asgi_from_env()``."""
    from server.logging import configure

    settings = Settings.from_env()
    configure(settings.log_level, settings.log_format)
    return create_app(settings, migrate=False)
