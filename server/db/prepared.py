"""Hot read-only queries run straight on the DBAPI cursor.

SQLAlchemy's execution path (execution context, result wrapping) costs about
0.15 ms per statement, several times the SQLite lookup itself; the htsget
ticket lookup runs on every ticket. ``PreparedSelect`` compiles a Core
``SELECT`` once per dialect, and runs it on a pooled DBAPI connection (same
pool, same pre-ping, same reset on return), returning named tuples.

Only statements whose parameters and columns need no type conversion by
SQLAlchemy take the direct path (integers and strings do not); anything else
quietly runs through SQLAlchemy as usual, so results never differ.
"""

from __future__ import annotations

import collections
import logging
import threading

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
        finally:
            connection.close()  # back to the pool, which rolls back (as engine.connect() does)
