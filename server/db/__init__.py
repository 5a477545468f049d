"""Database layer: SQLAlchemy 2 on SQLite (embedded default) or PostgreSQL.

Every table lives on ``Base.metadata``; Alembic migrations in
``server/db/migrations`` create them. Each API package owns its own tables
module and its own migration branch (all branch from ``0001_core``), and
``upgrade()`` applies every head.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import JSON

logger = logging.getLogger(__name__)

# JSON documents: JSONB on PostgreSQL, JSON text on SQLite.
Document = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


PING_AFTER_IDLE = 1.0  # seconds
CONNECT_TIMEOUT = 5  # seconds (PostgreSQL)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: durable across application crashes, one fsync per checkpoint
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    # An unreachable server fails a connect within CONNECT_TIMEOUT instead of
    # the operating system's TCP timeout (minutes), so requests get their 503 promptly.
    connect_args = {} if "connect_timeout=" in url else {"connect_timeout": CONNECT_TIMEOUT}
    engine = sa.create_engine(url, pool_size=5, max_overflow=10, connect_args=connect_args)
    health = engine.genomeport_health = _PoolHealth()

    # Pessimistic disconnect handling without a round trip per checkout: a pooled
    # connection is pinged before use when it sat idle longer than
    # PING_AFTER_IDLE seconds, or when any connection was found dead since it
    # was last known good (the database restarted: every pooled connection is
    # suspect). A dead one is then replaced transparently.
    @event.listens_for(engine, "connect")
    def _known_good(_dbapi_conn, record):  # pragma: no cover - trivial
        record.info["generation"] = health.generation

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn, record):  # pragma: no cover - trivial
        record.info["idle_from"] = time.monotonic()

    @event.listens_for(engine, "handle_error")
    def _on_error(context):
        if context.is_disconnect:
            health.disconnected()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy):
        idle_from = record.info.get("idle_from")
        suspect = record.info.get("generation") != health.generation
        if not suspect and (idle_from is None or time.monotonic() - idle_from <= PING_AFTER_IDLE):
            return
        generation = health.generation
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DisconnectionError(str(exc)) from exc
        record.info["generation"] = generation

    return engine


class _PoolHealth:
    """Counts disconnects seen on an engine's connections (a generation number)."""

    def __init__(self) -> None:
        self.generation = 0

    def disconnected(self) -> None:
        self.generation += 1


def note_driver_error(engine: Engine, exc: BaseException, connection) -> None:
    """For code that runs statements on the driver's cursor directly
    (``server.db.prepared``): when ``exc`` means the connection is dead,
    invalidate it (it is not returned to the pool) and mark every pooled
    connection suspect, as SQLAlchemy's own execution path does."""
    dbapi = engine.dialect.loaded_dbapi
    if not isinstance(exc, dbapi.Error):
        return
    # a pooled (raw) connection has dbapi_connection; a Connection reaches it through .connection
    dbapi_conn = getattr(connection, "dbapi_connection", None)
    if dbapi_conn is None and isinstance(connection, sa.engine.Connection):
        dbapi_conn = connection.connection.dbapi_connection
    try:
        dead = engine.dialect.is_disconnect(exc, dbapi_conn, None)
    except Exception:  # noqa: BLE001 - classification must not mask the original error
        dead = False
    if not dead:
        return
    health = getattr(engine, "genomeport_health", None)
    if health is not None:
        health.disconnected()
    try:
        connection.invalidate(exc)
    except Exception:  # noqa: BLE001
        logger.debug("invalidating a dead connection failed", exc_info=True)


class Database:
    """An engine plus a session factory, created once per app or CLI run."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure
            reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
            logger.warning("database ping failed: %s: %s", type(exc).__name__, reason[:200])
            return False

    def upgrade(self) -> None:
        from server.db.migrate import upgrade

        upgrade(self)

    def dispose(self) -> None:
        self.engine.dispose()
