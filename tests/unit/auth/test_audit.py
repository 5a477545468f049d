"""One audit row per decision (``server.auth.audit``), on the real database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from server import audit as audit_log
from server.auth import ANONYMOUS, Caller, authorize, check_token
from server.auth.audit import Decision, append, outcome_for
from server.db.tables import AuditEvent
from server.errors import InvalidAuthentication, NotFound, PermissionDenied, TooManyRequests
from server.logging import request_id_var

ALICE = Caller(subject="iss|alice", issuer="iss", controlled=frozenset({"g"}))
REJECTED = Caller(error="signature verification failed")


def rows(db) -> list[AuditEvent]:
    with db.session() as session:
        return list(session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)))


def test_outcome_for():
    assert [outcome_for(s) for s in (200, 206, 401, 403, 404, 500)] == [
        "granted",
        "granted",
        "denied",
        "denied",
        "error",
        "error",
    ]
    assert outcome_for(404, (401, 403, 404)) == "denied"


def test_a_granted_decision_writes_one_row_with_the_request_id(db):
    token = request_id_var.set("req-1")
    try:
        with Decision(db, ALICE, api="htsget", action="ticket.reads", object_id="o") as d:
            d.dataset_id = "ctl"
            authorize(ALICE, "controlled", "g")
    finally:
        request_id_var.reset(token)
    [row] = rows(db)
    assert (row.caller, row.api, row.action, row.outcome, row.status) == (
        "iss|alice",
        "htsget",
        "ticket.reads",
        "granted",
        200,
    )
    assert (row.dataset_id, row.object_id, row.request_id, row.query) == ("ctl", "o", "req-1", {})


@pytest.mark.parametrize(
    "caller,access,status,outcome",
    [
        (REJECTED, "public", 401, "denied"),
        (ANONYMOUS, "controlled", 401, "denied"),
        (ALICE, "registered", 403, "denied"),
    ],
)
def test_refusals_are_denied_with_their_status(db, caller, access, status, outcome):
    decision = Decision(db, caller, api="drs", action="get_object", query={"drs_id": "x"})
    with pytest.raises((InvalidAuthentication, PermissionDenied)), decision:
        authorize(caller, access, "other")
    [row] = rows(db)
    assert (row.caller, row.outcome, row.status, row.query) == (
        caller.label,
        outcome,
        status,
        {"drs_id": "x"},
    )


def test_other_errors_are_errors_unless_named_refusals(db):
    with pytest.raises(NotFound), Decision(db, ALICE, api="drs", action="a"):
        raise NotFound("no such object")
    with pytest.raises(NotFound), Decision(db, ALICE, api="wes", action="b", refusals=(404,)):
        raise NotFound("another caller's run")
    assert [(r.outcome, r.status) for r in rows(db)] == [("error", 404), ("denied", 404)]


def test_reads_without_record_grant_write_only_refusals(db):
    with Decision(db, ALICE, api="wes", action="status", record_grant=False):
        check_token(ALICE)
    assert rows(db) == []
    decision = Decision(db, REJECTED, api="wes", action="status", record_grant=False)
    with pytest.raises(InvalidAuthentication), decision:
        check_token(REJECTED)
    assert [(r.caller, r.outcome) for r in rows(db)] == [("anonymous", "denied")]


def test_only_the_named_failures_are_recorded(db):
    with pytest.raises(ValueError), Decision(db, ALICE, api="drs", action="a"):
        raise ValueError("a bug, not a decision")
    assert rows(db) == []
    with (
        pytest.raises(ValueError),
        Decision(db, ALICE, api="beacon", action="b", failures=Exception),
    ):
        raise ValueError("a bug")
    assert [(r.outcome, r.status) for r in rows(db)] == [("error", 500)]


def test_an_error_may_carry_its_audit_fields(db):
    exc = TooManyRequests("spent")
    exc.audit = {"outcome": "refused", "dataset_id": "kg", "query": {"budget": {"window": "day"}}}
    decision = Decision(db, ALICE, api="beacon", action="GET x", query={"entry": "x"})
    with pytest.raises(TooManyRequests), decision:
        raise exc
    [row] = rows(db)
    assert (row.outcome, row.status, row.dataset_id) == ("refused", 429, "kg")
    assert row.query == {"entry": "x", "budget": {"window": "day"}}
    # `genomeport audit list --outcome refused` finds it
    listed = audit_log.query(db, audit_log.AuditFilter(outcome="refused"))
    assert [r["outcome"] for r in listed] == ["refused"]


def test_grant_on_a_connection_is_part_of_its_transaction_and_written_once(db):
    with db.session() as session:
        with Decision(db, ALICE, api="beacon", action="GET x") as d:
            d.grant(dataset_id="kg", query={"n": 1}, connection=session.connection())
        session.rollback()  # the query's transaction failed: its row goes with it
    assert rows(db) == []
    with db.session() as session, Decision(db, ALICE, api="beacon", action="GET x") as d:
        d.grant(dataset_id="kg", query={"n": 1}, connection=session.connection())
    assert [(r.outcome, r.dataset_id, r.query) for r in rows(db)] == [("granted", "kg", {"n": 1})]


def test_append_writes_a_download_row(db):
    append(db, caller="iss|bob", api="data", action="download.file", outcome="granted", status=206)
    [row] = rows(db)
    assert (row.caller, row.api, row.status, row.request_id) == ("iss|bob", "data", 206, "")
