"""A node (settings, database, app, client) shared by all tests of one module.

Building an app runs the migrations; doing it once per module and database
kind instead of once per test keeps the API suites fast. Use it for tests
that only read, or that look only at rows they created themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    from server.web.app import create_app
    from tests.conftest import fresh_database, node_settings

    var = tmp_path_factory.mktemp(f"node-{request.param}")
    if request.param == "postgresql":
        request.getfixturevalue("pg_available")
    with fresh_database(request.param, var) as url:
        settings = configure(node_settings(var / "var", url, log_format="text"))
        app = create_app(settings)
        db = app.app.extensions["genomeport"].db
        populate(db)
        try:
            with app.test_client() as client:
                yield ModuleNode(settings, db, client)
        finally:
            db.dispose()
