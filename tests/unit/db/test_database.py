"""Pooled PostgreSQL connections survive their server sessions being killed.

The server ends this test's own backends (``pg_terminate_backend`` on their
pids: what a restart does to every client). The first statement on a dead
connection fails, as it must; the pool then treats every connection as
suspect and pings it before use, so the next statement works even though the
other pooled connections were used within the last second (no idle ping).
With that generation check switched off, the next statement fails too.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from server.db import Database
from server.db.prepared import PreparedSelect


@pytest.fixture
def pg(tmp_path, pg_available):
    from tests.conftest import fresh_database

    with fresh_database("postgresql", tmp_path) as url:
        database = Database(url)
        yield database
        database.dispose()


SELECT_ONE = PreparedSelect(sa.select(sa.literal_column("1").label("one")))


def _kill_pooled_backends(db: Database, count: int = 3) -> None:
    """Check out ``count`` connections at once (the whole pool), end their server
    sessions from a separate engine, and leave them in the pool, dead."""
    held = [db.engine.raw_connection() for _ in range(count)]
    pids = []
    for conn in held:
        cur = conn.cursor()
        cur.execute("SELECT pg_backend_pid()")
        pids.append(cur.fetchone()[0])
        cur.close()
        conn.rollback()
    for conn in held:
        conn.close()  # back to the pool, alive as far as the pool knows
    killer = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    try:
        with killer.connect() as conn:
            for pid in pids:  # only this test's own sessions
                conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            conn.commit()
    finally:
        killer.dispose()


def _statements_after_kill(db: Database) -> list[str]:
    outcomes = []
    for _ in range(3):
        try:
            SELECT_ONE.rows(db.engine, {})
            outcomes.append("ok")
        except Exception as exc:  # noqa: BLE001 - the outcome is what is recorded
            outcomes.append(f"{type(exc).__name__}: {exc}")
    return outcomes


def test_after_a_disconnect_every_pooled_connection_is_checked(pg):
    SELECT_ONE.rows(pg.engine, {})
    _kill_pooled_backends(pg)
    outcomes = _statements_after_kill(pg)
    assert outcomes[0] != "ok"  # the first use of a dead connection fails
    assert outcomes[1:] == ["ok", "ok"], outcomes


def test_without_the_generation_check_dead_connections_are_reused(pg, monkeypatch):
    from server.db import _PoolHealth

    monkeypatch.setattr(_PoolHealth, "disconnected", lambda self: None)
    SELECT_ONE.rows(pg.engine, {})
    _kill_pooled_backends(pg)
    outcomes = _statements_after_kill(pg)
    assert outcomes.count("ok") < 2, outcomes
