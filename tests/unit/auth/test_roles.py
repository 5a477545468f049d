"""Roles on datasets (server.auth.roles) and their commands, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from server.audit import AuditFilter, query
from server.auth import Caller
from server.auth.roles import (
    ROLES,
    add_role,
    datasets_with_role,
    has_role,
    list_roles,
    remove_role,
    token_subject,
)
from server.cli import ROLE_HELP, Ctx, main
from server.errors import InvalidInput, NotFound
from server.registry import add_dataset

ISS = "https://login.example.dk"
OTHER = "https://elsewhere.example.org"


def caller(sub: str, iss: str = ISS) -> Caller:
    return Caller(subject=f"{iss}|{sub}", issuer=iss)


@pytest.fixture
def datasets(db):
    for name in ("cohort1", "cohort2"):
        add_dataset(db, name, access="controlled")
    return db


def test_a_role_matches_its_subject_on_its_dataset_only(datasets):
    db = datasets
    assert add_role(db, "cohort1", "dac", "alice") == "added"
    assert has_role(db, caller("alice"), "cohort1", "dac")
    assert has_role(db, caller("alice", OTHER), "cohort1", "dac")  # any trusted issuer
    assert not has_role(db, caller("alice"), "cohort2", "dac")
    assert not has_role(db, caller("alice"), "cohort1", "submitter")
    assert not has_role(db, caller("bob"), "cohort1", "dac")
    assert not has_role(db, Caller(), "cohort1", "dac")
    # a rejected token never holds a role, even with the right subject
    assert not has_role(
        db, Caller(subject=f"{ISS}|alice", issuer=ISS, error="expired"), "cohort1", "dac"
    )


def test_a_role_bound_to_an_issuer_ignores_the_same_subject_elsewhere(datasets):
    db = datasets
    add_role(db, "cohort2", "submitter", "lab-7", issuer=ISS)
    assert datasets_with_role(db, caller("lab-7"), "submitter") == {"cohort2"}
    assert datasets_with_role(db, caller("lab-7", OTHER), "submitter") == set()


def test_subject_with_the_separator_is_not_confused_with_another_issuer(datasets):
    db = datasets
    add_role(db, "cohort1", "dac", "x|alice")
    assert token_subject(caller("x|alice")) == "x|alice"
    assert has_role(db, caller("x|alice"), "cohort1", "dac")
    assert not has_role(db, caller("alice"), "cohort1", "dac")


def test_add_is_idempotent_remove_reports_absent_and_both_are_audited(datasets):
    db = datasets
    assert add_role(db, "cohort1", "dac", "alice") == "added"
    assert add_role(db, "cohort1", "dac", "alice") == "unchanged"
    assert remove_role(db, "cohort1", "dac", "alice") == "removed"
    assert remove_role(db, "cohort1", "dac", "alice") == "absent"
    assert list_roles(db, "cohort1") == []
    rows = query(db, AuditFilter(api="access"))
    assert [r["action"] for r in rows].count("role-add") == 1
    assert [r["action"] for r in rows].count("role-remove") == 1
    assert all(r["caller"].startswith("operator:") for r in rows)


def test_unknown_role_dataset_or_bad_subject_is_refused(datasets):
    db = datasets
    with pytest.raises(InvalidInput):
        add_role(db, "cohort1", "admin", "alice")
    with pytest.raises(NotFound):
        add_role(db, "nope", "dac", "alice")
    with pytest.raises(InvalidInput):
        add_role(db, "cohort1", "dac", "bad\nsubject")
    assert list_roles(db) == []


def test_removing_a_dataset_removes_its_roles(datasets):
    import sqlalchemy as sa

    from server.db.tables import Dataset

    db = datasets
    add_role(db, "cohort1", "dac", "alice")
    with db.session() as session:
        session.execute(sa.delete(Dataset).where(Dataset.id == "cohort1"))
    assert list_roles(db) == []


def test_cli_groups_cover_every_role():
    assert set(ROLE_HELP) == set(ROLES)


def test_cli_adds_lists_and_removes(settings, datasets):
    runner = CliRunner()
    obj = Ctx(settings)
    r = runner.invoke(main, ["dataset", "dac", "add", "cohort1", "alice", "--issuer", ISS], obj=obj)
    assert r.exit_code == 0 and "added: alice is dac of cohort1" in r.output, r.output
    r = runner.invoke(main, ["dataset", "dac", "list", "--json"], obj=obj)
    assert json.loads(r.output) == [
        {"dataset_id": "cohort1", "role": "dac", "subject": "alice", "issuer": ISS}
    ]
    r = runner.invoke(main, ["dataset", "submitter", "add", "missing", "lab"], obj=obj)
    assert r.exit_code == 1 and "no dataset 'missing'" in r.output
    r = runner.invoke(main, ["dataset", "dac", "remove", "cohort1", "alice"], obj=obj)
    assert r.exit_code == 1 and "is not dac" in r.output  # bound to ISS: needs --issuer
    r = runner.invoke(
        main, ["dataset", "dac", "remove", "cohort1", "alice", "--issuer", ISS], obj=obj
    )
    assert r.exit_code == 0 and "removed" in r.output
    obj.db.dispose()
