"""The migrations build exactly the tables the code declares.

A fresh database of each kind is upgraded through every Alembic head and
compared with ``Base.metadata`` (every package's ``tables.py``) by Alembic's
own autogenerate comparison: a table, column, column type, index or
constraint that one side has and the other lacks fails the test with the
difference.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import server
from server.db import Base


def _import_every_tables_module() -> None:
    for module in pkgutil.walk_packages(server.__path__, "server."):
        if module.name.endswith(".tables"):
            importlib.import_module(module.name)


def _meaningful(diff) -> bool:
    # Server defaults and comments are not declared on both sides.
    kind = diff[0][0] if isinstance(diff, list) else diff[0]
    return kind not in ("modify_default", "modify_comment")


def test_migrations_match_the_declared_tables(db):
    _import_every_tables_module()
    with db.engine.connect() as conn:
        partitions = _partitions(conn)

        def include(name, type_, parent_names) -> bool:
            # the partitions of a partitioned table are its storage, not tables
            # of their own (PostgreSQL lists them beside their parent)
            return not (type_ == "table" and (name == "alembic_version" or name in partitions))

        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": include}
        )
        diffs = [d for d in compare_metadata(context, Base.metadata) if _meaningful(d)]
    if diffs:
        pytest.fail("migrations and tables differ:\n" + "\n".join(map(repr, diffs)))


def _partitions(conn) -> set[str]:
    if conn.dialect.name != "postgresql":
        return set()
    rows = conn.exec_driver_sql("SELECT relname FROM pg_class WHERE relispartition")
    return {name for (name,) in rows}
