"""A node (settings, database, app, client) shared by all tests of one module.

Building an app runs the migrations; doing it once per module and database
kind instead of once per test keeps the API suites fast. Use it for tests
that only read, or that look only at rows they created themselves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from server.db import Database
from server.settings import Settings


@dataclass
class ModuleNode:
    settings: Settings
    db: Database
    client: object


def module_node(request, tmp_path_factory, configure, populate):
    """Generator for a module-scoped fixture parametrised over ["sqlite", "postgresql"].

    ``configure(settings) -> settings`` adjusts settings; ``populate(db)`` registers data.
    """
    from server.app import create_app
    from tests.conftest import PG_URL, _pg_engine

    var = tmp_path_factory.mktemp(f"node-{request.param}")
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{var / 'genomeport.db'}"
    else:
        request.getfixturevalue("pg_available")
        schema = "t_" + uuid.uuid4().hex[:16]
        engine = _pg_engine()
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in PG_URL else "?"
        url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    settings = configure(Settings(var_dir=str(var / "var"), database_url=url,
                                  signing_key="test-signing-key-" + uuid.uuid4().hex,
                                  log_format="text"))
    app = create_app(settings)
    db = app.app.extensions["genomeport"].db
    populate(db)
    try:
        with app.test_client() as client:
            yield ModuleNode(settings, db, client)
    finally:
        db.dispose()
        if schema is not None:
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            engine.dispose()

