"""The app factory: ``create_app(settings)`` builds one node.

A Connexion 3 ``FlaskApp`` serves the OpenAPI documents in ``openapi/``; each
operationId resolves to the snake_case function of the same name in the
``handlers`` module named after its document. In front of Connexion sit plain
ASGI middlewares (request ids, metrics, body caps, CORS and the data plane),
so bulk data never goes through the Flask adapter.
"""

from __future__ import annotations

import importlib
import logging
import re
from pathlib import Path

import connexion
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from starlette.middleware.cors import CORSMiddleware

from server.db import Database
from server.routing import Node, register_error_handlers
from server.settings import Settings

logger = logging.getLogger(__name__)

OPENAPI_DIR = Path(__file__).resolve().parent.parent / "openapi"

# (document, base path, handler module)
APIS: tuple[tuple[str, str, str], ...] = (
    ("service-info.yaml", "", "handlers.service_info"),
    ("htsget.yaml", "", "handlers.htsget"),
    ("beacon.yaml", "/beacon/v2", "handlers.beacon"),
    ("wes.yaml", "/ga4gh/wes/v1", "handlers.wes"),
    ("drs.yaml", "/ga4gh/drs/v1", "handlers.drs"),
)

# Loaded for their side effects (error renderers, data-plane resolvers).
PLUGINS = ("server.beacon.errors", "server.wes.outputs", "server.drs.plugin")


def snake_case(name: str) -> str:
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return name.replace("-", "_").lower()


class HandlerResolver(Resolver):
    """Maps an operationId to ``<module>.<snake_case(operationId)>``."""

    def __init__(self, module: str):
        super().__init__()
        self.module = module

    def resolve_operation_id(self, operation) -> str:
        return f"{self.module}.{snake_case(operation.operation_id)}"


def available_apis() -> list[tuple[str, str, str]]:
    return [api for api in APIS if (OPENAPI_DIR / api[0]).exists()]


def create_app(settings: Settings, *, migrate: bool = True) -> connexion.FlaskApp:
    Path(settings.var_dir).mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    if migrate:
        db.upgrade()

    from server import wsgi_bridge
    from server.validation import VALIDATOR_MAP

    cx = connexion.FlaskApp(__name__, specification_dir=str(OPENAPI_DIR))
    # A path with "//" names no route (404 in the API's own error shape); Werkzeug
    # would otherwise answer it with a redirect that no API documents.
    cx.app.url_map.merge_slashes = False
    cx.app.url_map._matcher.merge_slashes = False
    wsgi_bridge.install(cx)  # one thread hop per response instead of a2wsgi's three
    cx.app.extensions["genomeport"] = Node(settings=settings, db=db)
    cx.app.config["MAX_CONTENT_LENGTH"] = None  # enforced by OpsMiddleware per API

    for module in PLUGINS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise

    for document, base_path, module in available_apis():
        cx.add_api(
            document,
            base_path=base_path or None,
            name=document.rsplit(".", 1)[0],  # two documents share the root path
            resolver=HandlerResolver(module),
            pythonic_params=True,
            strict_validation=False,
            validate_responses=False,
            validator_map=VALIDATOR_MAP,  # parameter schemas compiled once, not per request
            # no bundled Swagger UI; server.asgi serves the documents as JSON
            swagger_ui_options=SwaggerUIOptions(swagger_ui=False, serve_spec=False),
        )
    register_error_handlers(cx)
    from server import invocation

    invocation.install(cx)  # handlers marked reads_request skip per-request argument marshalling

    # Outermost first: ops (ids, logs, metrics, caps), CORS, then the data plane.
    from server.asgi import OpsMiddleware, openapi_documents

    cx.add_middleware(
        OpsMiddleware,
        MiddlewarePosition.BEFORE_EXCEPTION,
        settings=settings,
        db=db,
        documents=openapi_documents(available_apis(), OPENAPI_DIR),
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
    try:
        dataplane = importlib.import_module("server.dataplane")
    except ModuleNotFoundError as exc:
        if exc.name != "server.dataplane":
            raise
    else:
        cx.add_middleware(
            dataplane.DataPlane, MiddlewarePosition.BEFORE_EXCEPTION, settings=settings, db=db
        )
    return cx


def asgi_from_env():
    """Entry point for gunicorn: ``server.app:asgi_from_env()``."""
    from server.logging import configure

    settings = Settings.from_env()
    configure(settings.log_level, settings.log_format)
    return create_app(settings, migrate=False)
