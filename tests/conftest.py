"""Shared fixtures: settings, real databases (SQLite and PostgreSQL), the app,
an in-process client and a real gunicorn server.

PostgreSQL is never optional: if it cannot be reached, the PostgreSQL tests
fail. Its URL is GENOMEPORT_TEST_DATABASE_URL (default: the machine's server at
127.0.0.1:5432, database ``test``). Each test gets its own schema.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.processes import clean_env, free_port, spawn, stop, wait_ready

__all__ = [
    "REPO",
    "free_port",
    "fresh_database",
    "migrated",
    "node_settings",
    "settings_env",
    "start_server",
    "stop_server",
]

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
PG_URL = os.environ.pop("GENOMEPORT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")

# Tests build Settings explicitly; a developer's own GENOMEPORT_* variables must not leak in.
for _key in [k for k in os.environ if k.startswith("GENOMEPORT_")]:
    del os.environ[_key]


def _pg_engine():
    return sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))


@pytest.fixture(scope="session")
def testdata() -> Path:
    path = SHARED / "testdata"
    assert path.is_dir(), f"test data missing at {path}"
    return path


@pytest.fixture(scope="session")
def seed_dir() -> Path:
    return REPO / "seed_data"


@pytest.fixture(scope="session")
def pg_available() -> None:
    engine = _pg_engine()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(
            f"PostgreSQL is required for the test suite and is not reachable at {PG_URL}: {exc}"
        )
    finally:
        engine.dispose()


@contextlib.contextmanager
def fresh_database(kind: str, directory: Path):
    """The URL of a new, empty database: a SQLite file in ``directory``, or a
    schema of its own on the PostgreSQL server, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'genomeport.db'}"
        return
    schema = "t_" + uuid.uuid4().hex[:16]
    engine = _pg_engine()
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """Signed tokens for this module's tests: a trusted issuer and an untrusted one
    (``kit.trusting(settings)`` makes a node trust the first)."""
    from tests.unit.auth.tokenkit import make_kit

    return make_kit(tmp_path_factory.mktemp("kit"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database of each kind."""
    if request.param == "postgresql":
        request.getfixturevalue("pg_available")
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_db_url(request, tmp_path_factory):
    """A fresh database of each kind for the whole module, for tests that only
    read what the module's fixtures register."""
    if request.param == "postgresql":
        request.getfixturevalue("pg_available")
    with fresh_database(request.param, tmp_path_factory.mktemp(f"db-{request.param}")) as url:
        yield url


def node_settings(var_dir: Path, database_url: str, **overrides):
    """Settings of a test node: its own var dir and database, a signing key of its own."""
    from server.settings import Settings

    return Settings(
        var_dir=str(var_dir),
        database_url=database_url,
        signing_key="test-signing-key-" + uuid.uuid4().hex,
        **overrides,
    )


def migrated(settings):
    """The node's database, migrated to the latest revision (``dispose`` it after)."""
    from server.db import Database

    database = Database(settings.effective_database_url)
    database.upgrade()
    return database


@pytest.fixture
def settings(tmp_path, db_url):
    return node_settings(tmp_path / "var", db_url, log_format="text")


@pytest.fixture
def db(settings):
    database = migrated(settings)
    yield database
    database.dispose()


@pytest.fixture
def app(settings, db):
    from server.web.app import create_app

    cx = create_app(settings)
    yield cx
    cx.app.extensions["genomeport"].db.dispose()


@pytest.fixture
def client(app):
    with app.test_client() as c:
        yield c


def settings_env(settings) -> dict[str, str]:
    """GENOMEPORT_* variables that reproduce ``settings`` in a child process."""
    import dataclasses
    import json

    env = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if value == f.default or (f.default is dataclasses.MISSING and not value):
            continue
        if isinstance(value, (tuple, list, dict)):
            value = json.dumps(list(value) if isinstance(value, tuple) else value)
        env["GENOMEPORT_" + f.name.upper()] = str(value)
    return env


class LiveServer:
    def __init__(self, url: str, proc: subprocess.Popen, log: Path):
        self.url, self.proc, self.log = url, proc, log

    def __str__(self) -> str:
        return self.url


def start_server(
    settings, *, workers: int = 2, port: int | None = None, env_extra=None
) -> LiveServer:
    """Run ``genomeport serve`` (gunicorn + uvicorn workers) and wait until it is ready."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    settings = settings.with_overrides(
        public_url=url, port=port, host="127.0.0.1", workers=workers, log_format="json"
    )
    env = clean_env()
    env.update(settings_env(settings))
    env.update(env_extra or {})
    log = Path(settings.var_dir) / f"server-{port}.log"
    proc = spawn([sys.executable, "-m", "server.cli", "serve"], log, env=env, cwd=REPO)
    try:
        wait_ready(url + "/health/ready", proc, log)
    except BaseException:
        stop(proc)
        raise
    return LiveServer(url, proc, log)


def stop_server(server: LiveServer) -> None:
    stop(server.proc)


@pytest.fixture
def live_server(settings, db):
    """A real gunicorn process serving ``settings`` (register data via ``db`` first,
    or through the returned server's API)."""
    server = start_server(settings)
    try:
        yield server
    finally:
        stop_server(server)


def pytest_terminal_summary(terminalreporter):
    """Say how many tests ran against each database, so CI output shows PostgreSQL ran."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") != "call" and outcome != "error":
                continue
            nodeid = getattr(report, "nodeid", "")
            for kind in ("sqlite", "postgresql"):
                if f"[{kind}" in nodeid or f"-{kind}]" in nodeid or f"-{kind}-" in nodeid:
                    counts.setdefault(kind, {}).setdefault(outcome, 0)
                    counts[kind][outcome] += 1
    for kind, by in sorted(counts.items()):
        detail = ", ".join(f"{n} {o}" for o, n in sorted(by.items()))
        against = PG_URL if kind == "postgresql" else "a SQLite file"
        terminalreporter.write_line(f"database {kind}: {detail} (against {against})")
