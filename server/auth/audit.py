"""The one writer of audit rows, and one audited access decision.

Every API records who asked for what and what the node decided: htsget
tickets, Beacon queries, WES runs, DRS objects and data-plane downloads. The
rows all go through :func:`append`, so they have one shape, one request id and
one commit policy; :class:`Decision` is how an API writes the row of a
decision: it opens the decision, applies the rules of ``server.auth`` inside
it, and the row is written when the block ends, from its outcome:

* no error: ``granted`` (200);
* a refusal (401 or 403 by default): ``denied``, with the refusal's status;
* any other error: ``error``, with its status.

An error may carry its own audit fields (``exc.audit``, a dict with
``outcome``, ``dataset_id`` or ``query`` entries), as the Beacon's query
budget does for a ``refused`` query.

Rows never contain tokens, signed URLs or genotypes; ``server.audit.scrub``
is applied again when they are read.
"""

from __future__ import annotations

import functools
import getpass
from dataclasses import dataclass, field

from server.auth import Caller
from server.errors import ServiceError
from server.logging import request_id_var

REFUSALS = (401, 403)


def outcome_for(status: int, refusals: tuple[int, ...] = REFUSALS) -> str:
    """``granted`` for a success, ``denied`` for a refusal, else ``error``."""
    if status in refusals:
        return "denied"
    return "granted" if status < 400 else "error"


@functools.lru_cache(maxsize=1)
def insert_statement():
    """One row per decision or download: compiled once, run on the DBAPI cursor."""
    from server.db.prepared import PreparedInsert
    from server.db.tables import AuditEvent

    return PreparedInsert(AuditEvent.__table__)


@functools.lru_cache(maxsize=1)
def _insert_async_commit():
    """One self-committing statement on PostgreSQL: the row, with
    ``synchronous_commit`` off for its own (implicit) transaction."""
    import sqlalchemy as sa

    from server.db.prepared import PreparedInsert
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
        sa.text("set_config('synchronous_commit', 'off', true) = 'off'")
    )
    return PreparedInsert(table, sa.insert(table).from_select(names, row))


def append(
    db,
    *,
    caller: str,
    api: str,
    action: str,
    outcome: str,
    status: int = 200,
    dataset_id: str = "",
    object_id: str = "",
    query: dict | None = None,
    request_id: str | None = None,
    connection=None,
) -> None:
    """Append one audit row. Never pass tokens or genotypes in ``query``.

    ``caller`` is the ``Caller.label``; ``request_id`` defaults to the
    request's own (``server.logging.request_id_var``).

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

    row = {
        "time": utcnow(),
        "caller": caller,
        "api": api,
        "action": action,
        "dataset_id": dataset_id or "",
        "object_id": object_id or "",
        "query": query or {},
        "outcome": outcome,
        "status": status,
        "request_id": request_id_var.get() if request_id is None else request_id,
    }
    if connection is not None:
        # straight through the driver, in the connection's transaction
        if connection.dialect.name != "postgresql":
            insert_statement().execute(connection, row)
        elif connection.connection.driver_connection.autocommit:
            _insert_async_commit().execute(connection, row)
        else:
            connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            insert_statement().execute(connection, row)
        return
    engine = db.engine
    setup = ("SET LOCAL synchronous_commit TO OFF",) if engine.dialect.name == "postgresql" else ()
    insert_statement().run(engine, row, setup=setup)


def operator_label() -> str:
    """The caller of a command an operator runs on the node: ``operator:<login>``."""
    return f"operator:{getpass.getuser()}"


def append_operator(db, **fields) -> None:
    """Append the row of an operator's command: ``fields`` as :func:`append`
    takes them, without ``caller`` (the operator) and ``outcome``
    (``granted``: a command that refuses raises before it is audited)."""
    append(db, caller=operator_label(), outcome="granted", **fields)


@dataclass
class Decision:
    """One access decision and its one audit row (see the module docstring).

    ``refusals``: the statuses recorded as ``denied`` (WES adds 404: another
    caller's run answers as a missing one). ``failures``: the exceptions that
    are recorded (others propagate unrecorded). ``record_grant=False``
    records refusals and errors only (reads that change nothing).
    ``dataset_id``, ``object_id`` and ``query`` may be set inside the block,
    once they are known.
    """

    db: object
    caller: Caller
    api: str
    action: str
    object_id: str = ""
    dataset_id: str = ""
    query: dict = field(default_factory=dict)
    refusals: tuple[int, ...] = REFUSALS
    failures: type[BaseException] | tuple[type[BaseException], ...] = ServiceError
    record_grant: bool = True
    written: bool = False

    def __enter__(self) -> Decision:
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if self.written:
            return False
        if exc is None:
            if self.record_grant:
                self.write("granted", 200)
        elif isinstance(exc, self.failures):
            status = getattr(exc, "status", 500)
            own = dict(getattr(exc, "audit", None) or {})
            if "query" in own:
                self.query = {**self.query, **own.pop("query")}
            self.write(own.pop("outcome", outcome_for(status, self.refusals)), status, **own)
        return False

    def grant(self, *, connection=None, **fields) -> None:
        """Write the ``granted`` row now (on ``connection``, in its transaction)."""
        self.write("granted", 200, connection=connection, **fields)

    def write(self, outcome: str, status: int, *, connection=None, **fields) -> None:
        for name, value in fields.items():
            setattr(self, name, value)
        self.written = True
        about = {k: getattr(self, k) for k in ("api", "action", "dataset_id", "object_id", "query")}
        append(
            self.db,
            caller=self.caller.label,
            outcome=outcome,
            status=status,
            connection=connection,
            **about,
        )
