"""Hot read-only queries run straight on the DBAPI cursor.

SQLAlchemy's execution path (execution context, result wrapping) costs about
0.15 ms per statement, several times the SQLite lookup itself; the htsget
ticket lookup runs on every ticket. ``PreparedSelect`` compiles a Core
``SELECT`` once per dialect, and runs it on a pooled DBAPI connection (same
pool, same pre-ping, same reset on return), returning named tuples.

Only statements whose parameters and columns need no type conversion by
SQLAlchemy take the direct path (integers and strings do not); anything else
quietly runs through SQLAlchemy as usual, so results never differ.

``fetch_all`` is the same shortcut for plain SQL text on a session's own
connection, inside its transaction (the Beacon request path).

Errors from the driver are raised as the driver raised them; a dead
connection is invalidated first (``server.db.note_driver_error``), as
SQLAlchemy does on its own path, so a database restart is survived here too.
"""

from __future__ import annotations

import collections
import functools
import logging
import re
import threading

from server.db import note_driver_error

logger = logging.getLogger(__name__)


class _Plan:
    __slots__ = ("sql", "positions", "row")

    def __init__(self, sql: str, positions: tuple[str, ...] | None, row):
        self.sql, self.positions, self.row = sql, positions, row


class PreparedSelect:
    """A Core ``SELECT`` with named bind parameters, executed with little overhead."""

    def __init__(self, statement):
        self.statement = statement
        self._plans: dict[str, _Plan | None] = {}
        self._lock = threading.Lock()

    def _plan(self, dialect) -> _Plan | None:
        key = f"{dialect.name}+{dialect.driver}"
        if key in self._plans:
            return self._plans[key]
        compiled = self.statement.compile(dialect=dialect)
        plain = not any(
            bind.type.dialect_impl(dialect).bind_processor(dialect) is not None
            for bind in compiled.binds.values()
        ) and not any(
            column.type.dialect_impl(dialect).result_processor(dialect, None) is not None
            for column in self.statement.selected_columns
        )
        plan = None
        if plain:
            names = [column.key for column in self.statement.selected_columns]
            positions = tuple(compiled.positiontup) if dialect.positional else None
            plan = _Plan(compiled.string, positions, collections.namedtuple("Row", names))
        else:
            logger.debug("statement needs type processing; it runs through SQLAlchemy")
        with self._lock:
            self._plans[key] = plan
        return plan

    def rows(self, engine, params: dict) -> list:
        plan = self._plan(engine.dialect)
        if plan is None:
            with engine.connect() as conn:
                return list(conn.execute(self.statement, params))
        args = params if plan.positions is None else tuple(params[name] for name in plan.positions)
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(plan.sql, args)
                return [plan.row._make(values) for values in cursor.fetchall()]
            finally:
                cursor.close()
        except Exception as exc:
            note_driver_error(engine, exc, connection)
            raise
        finally:
            connection.close()  # back to the pool, which rolls back (as engine.connect() does)


class _InsertPlan:
    __slots__ = ("sql", "names", "processors", "positional")

    def __init__(self, sql, names, processors, positional):
        self.sql, self.names, self.processors, self.positional = sql, names, processors, positional

    def args(self, row: dict):
        values = {
            name: (fn(row[name]) if fn is not None else row[name])
            for name, fn in zip(self.names, self.processors, strict=False)
        }
        return tuple(values[name] for name in self.names) if self.positional else values


class PreparedInsert:
    """A one-row ``INSERT`` into ``table``, compiled once per dialect and column set.

    Values go through each column type's own bind processor (SQLAlchemy's
    public ``TypeEngine.bind_processor``), so they are stored exactly as
    SQLAlchemy stores them. Columns left out must have no Python-side default;
    otherwise (or for any statement the plan cannot describe) the insert runs
    through SQLAlchemy.
    """

    def __init__(self, table, statement=None):
        import sqlalchemy as sa

        self.table = table
        # another INSERT into ``table`` whose bind parameters are named for its
        # columns (an INSERT ... SELECT of them), or the plain one-row INSERT
        self.statement = sa.insert(table) if statement is None else statement
        self._plans: dict[tuple, _InsertPlan | None] = {}
        self._lock = threading.Lock()

    def _plan(self, dialect, keys: tuple[str, ...]) -> _InsertPlan | None:
        cache_key = (dialect.name, dialect.driver, keys)
        if cache_key in self._plans:
            return self._plans[cache_key]
        plan = None
        omitted = [c for c in self.table.columns if c.key not in keys]
        if all(c.default is None and c.onupdate is None for c in omitted):
            compiled = self.statement.compile(dialect=dialect, column_keys=list(keys))
            names = tuple(compiled.positiontup) if dialect.positional else tuple(compiled.binds)
            if set(names) == set(keys):
                processors = tuple(
                    compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                    for name in names
                )
                plan = _InsertPlan(compiled.string, names, processors, dialect.positional)
        with self._lock:
            self._plans[cache_key] = plan
        return plan

    def run(self, engine, row: dict, *, setup: tuple[str, ...] = ()) -> None:
        """Insert ``row`` and commit; ``setup`` statements run first in the same transaction."""
        plan = self._plan(engine.dialect, tuple(row))
        if plan is None:
            import sqlalchemy as sa

            with engine.begin() as conn:
                for sql in setup:
                    conn.execute(sa.text(sql))
                conn.execute(self.statement, row)
            return
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                for sql in setup:
                    cursor.execute(sql)
                cursor.execute(plan.sql, plan.args(row))
            finally:
                cursor.close()
            connection.commit()
        except Exception as exc:
            note_driver_error(engine, exc, connection)
            raise
        finally:
            connection.close()  # back to the pool; an uncommitted transaction is rolled back

    def execute(self, connection, row: dict) -> None:
        """Insert ``row`` on ``connection`` (a SQLAlchemy ``Connection``), in its
        transaction, straight through the driver (the caller commits)."""
        plan = self._plan(connection.dialect, tuple(row))
        if plan is None:
            connection.execute(self.statement, row)
            return
        cursor = connection.connection.driver_connection.cursor()
        try:
            cursor.execute(plan.sql, plan.args(row))
        except Exception as exc:
            note_driver_error(connection.engine, exc, connection)
            raise
        finally:
            cursor.close()


@functools.lru_cache(maxsize=512)
def _driver_sql(sql: str, dialect: str) -> str:
    """``:name`` placeholders in the driver's own parameter style."""
    if dialect == "postgresql":
        return re.sub(r":(\w+)", r"%(\1)s", sql)
    return sql


def fetch_all(session, sql: str, params: dict | None = None) -> list[tuple]:
    """Run plain SQL (``:name`` parameters) on the session's connection, in its
    transaction, straight through the driver: the hot queries of a Beacon request
    skip building, caching and compiling SQLAlchemy statements."""
    conn = session.connection()
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(_driver_sql(sql, conn.dialect.name), params or {})
        return cursor.fetchall()
    except Exception as exc:
        note_driver_error(conn.engine, exc, conn)
        raise
    finally:
        cursor.close()
