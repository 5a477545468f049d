"""WES operations decide through ``server.auth`` and audit each decision once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from server.auth import ANONYMOUS, Caller
from server.db.tables import AuditEvent
from server.errors import InvalidAuthentication, NotFound
from server.wes import service, store

ALICE = Caller(subject="iss|alice", issuer="iss")
BOB = Caller(subject="iss|bob", issuer="iss")


@pytest.fixture
def run(db, tmp_path):
    return store.create_run(
        db,
        id="run-of-alice",
        owner=ALICE.label,
        request={},
        engine="cwltool",
        workdir=str(tmp_path),
        workflow="wf.cwl",
    )


def rows(db) -> list[tuple]:
    with db.session() as session:
        found = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))
        return [(r.caller, r.action, r.object_id, r.outcome, r.status) for r in found]


def test_anonymous_caller_cannot_read_another_callers_run(settings, db, run):
    assert not settings.auth_issuers  # a development node: anonymous callers may use WES
    with pytest.raises(NotFound):
        service.get_run_status(settings, db, ANONYMOUS, run.id)
    with pytest.raises(NotFound):
        service.get_run_log(settings, db, ANONYMOUS, run.id)
    assert service.list_runs(settings, db, ANONYMOUS)["runs"] == []
    assert rows(db) == [
        ("anonymous", "status", run.id, "denied", 404),
        ("anonymous", "get", run.id, "denied", 404),
    ]


def test_with_an_issuer_anonymous_callers_get_401(settings, db, run):
    issuing = settings.with_overrides(auth_issuers=({"issuer": "iss"},))
    with pytest.raises(InvalidAuthentication):
        service.get_run_status(issuing, db, ANONYMOUS, run.id)
    assert rows(db) == [("anonymous", "status", run.id, "denied", 401)]


def test_only_the_owner_cancels_and_the_cancel_is_granted_on_record(settings, db, run):
    assert service.get_run_status(settings, db, ALICE, run.id)["state"] == "QUEUED"
    with pytest.raises(NotFound):
        service.cancel_run(settings, db, BOB, run.id)
    assert service.cancel_run(settings, db, ALICE, run.id) == {"run_id": run.id}
    assert rows(db) == [  # reads that succeed are not recorded; changes are
        ("iss|bob", "cancel", run.id, "denied", 404),
        ("iss|alice", "cancel", run.id, "granted", 200),
    ]
