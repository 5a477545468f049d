"""Request context for handlers: the running node and the caller of this request.

``node()`` is the running node (settings, database), ``current_caller()``
the authenticated caller of this request, validated once per request. Both
read Flask's request context, so only handlers and the web layer call them;
services receive the node's settings, database and caller as arguments.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import flask

from server.auth import Caller
from server.auth.tokens import caller_from_request
from server.db import Database
from server.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class Node:
    settings: Settings
    db: Database


def node() -> Node:
    return flask.current_app.extensions["genomeport"]


def current_caller(passports: list[str] | None = None) -> Caller:
    """The caller of this request, validated once and cached on ``flask.g``.

    ``passports`` (DRS POST bodies) are validated in addition to the header.
    """
    if passports is None and "genomeport_caller" in flask.g:
        return flask.g.genomeport_caller
    header = flask.request.headers.get("Authorization")
    # server.auth decides: never raises, a rejected token is a caller with an error
    n = node()
    caller = caller_from_request(n.settings, header, passports=passports, db=n.db)
    if passports is None:
        flask.g.genomeport_caller = caller
    return caller
