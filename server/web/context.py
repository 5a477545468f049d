"""Request context for handlers: the running node and the caller of this request.

``node()`` is the running node (settings, database, audit), ``current_caller()``
the authenticated caller of this request, validated once per request. Both
read Flask's request context, so only handlers and the web layer call them;
services receive the node's settings, database and caller as arguments.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import flask

from server.auth import ANONYMOUS, Caller
from server.db import Database
from server.logging import request_id_var
from server.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class Node:
    settings: Settings
    db: Database

    def audit(
        self,
        *,
        api: str,
        action: str,
        outcome: str,
        status: int = 200,
        dataset_id: str = "",
        object_id: str = "",
        query: dict | None = None,
        caller: Caller | None = None,
        connection=None,
    ) -> None:
        """Append one audit row. Never pass tokens or genotypes in ``query``.

        With ``connection`` the row is written on that connection: in its
        transaction (the caller commits it, before the response is sent), or,
        on an autocommit PostgreSQL connection, as a statement that commits
        itself; otherwise it is committed here.

        The row is committed before the response is sent. On PostgreSQL the
        commit does not wait for the WAL flush (``synchronous_commit=off`` for
        this transaction only): a crash of the node loses nothing, a crash of
        the database server itself may lose the last fraction of a second.
        SQLite runs in WAL mode with ``synchronous=NORMAL``, the same trade.
        """
        from server.db.tables import utcnow

        if caller is None:
            caller = current_caller() if flask.has_request_context() else ANONYMOUS
        row = {
            "time": utcnow(),
            "caller": caller.label,
            "api": api,
            "action": action,
            "dataset_id": dataset_id or "",
            "object_id": object_id or "",
            "query": query or {},
            "outcome": outcome,
            "status": status,
            "request_id": request_id_var.get(),
        }
        if connection is not None:
            if connection.dialect.name != "postgresql":
                connection.execute(_audit_insert().statement, row)
            elif connection.connection.driver_connection.autocommit:
                connection.execute(_audit_insert_async_commit(), row)
            else:
                connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                connection.execute(_audit_insert().statement, row)
            return
        engine = self.db.engine
        setup = (
            ("SET LOCAL synchronous_commit TO OFF",) if engine.dialect.name == "postgresql" else ()
        )
        _audit_insert().run(engine, row, setup=setup)


def _audit_insert():
    from server.audit import insert_statement

    return insert_statement()


@functools.lru_cache(maxsize=1)
def _audit_insert_async_commit():
    """One self-committing statement on PostgreSQL: the row, with
    ``synchronous_commit`` off for its own (implicit) transaction."""
    import sqlalchemy as sa

    from server.db.tables import AuditEvent

    table = AuditEvent.__table__
    names = [
        "time",
        "caller",
        "api",
        "action",
        "dataset_id",
        "object_id",
        "query",
        "outcome",
        "status",
        "request_id",
    ]
    row = sa.select(*[sa.bindparam(n, type_=table.c[n].type) for n in names]).where(
        sa.func.set_config("synchronous_commit", "off", True) == "off"
    )
    return sa.insert(table).from_select(names, row)


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
    from server.auth.tokens import caller_from_request

    try:
        return caller_from_request(settings, header, passports=passports)
    except Exception as exc:  # noqa: BLE001 - fail closed
        logger.warning("token validation failed: %s", type(exc).__name__)
        return Caller(error="token could not be validated")
