"""Roles of subjects on datasets: who sits on a dataset's data access
committee (``dac``) and who may submit files to it (``submitter``).

A role names a token subject (``sub``) and, optionally, the issuer it must
come from; without one, the subject of any trusted issuer matches (the
issuers themselves are trusted only through ``auth_issuers``). Roles are
granted by operators on the command line (``genomeport dataset dac|submitter
add|remove|list``), and every change is audited.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from server.auth import Caller
from server.auth.audit import append_operator
from server.auth.tables import DatasetRole
from server.db import Database
from server.errors import InvalidInput, NotFound

ROLES = ("dac", "submitter")


@dataclass(frozen=True)
class RoleHolder:
    dataset_id: str
    role: str
    subject: str
    issuer: str  # "" for any trusted issuer


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")


def token_subject(caller: Caller) -> str | None:
    """The token's own ``sub`` of an authenticated caller (``Caller.subject``
    is ``issuer|sub``)."""
    if not caller.authenticated or not caller.issuer:
        return None
    prefix = caller.issuer + "|"
    subject = caller.subject or ""
    return subject[len(prefix) :] if subject.startswith(prefix) else None


def _matches(caller: Caller):
    sub = token_subject(caller)
    if sub is None:
        return None
    return sa.and_(
        DatasetRole.subject == sub,
        sa.or_(DatasetRole.issuer == "", DatasetRole.issuer == caller.issuer),
    )


def add_role(db: Database, dataset_id: str, role: str, subject: str, issuer: str = "") -> str:
    """Give SUBJECT the role on the dataset. Returns "added" or "unchanged"."""
    from server.db.tables import Dataset

    _check_role(role)
    if not subject or len(subject) > 256 or any(ord(c) < 32 for c in subject):
        raise InvalidInput("subject must be 1-256 printable characters")
    with db.session() as session:
        if session.get(Dataset, dataset_id) is None:
            raise NotFound(f"no dataset {dataset_id!r}")
        key = {"dataset_id": dataset_id, "role": role, "subject": subject, "issuer": issuer}
        if session.get(DatasetRole, key) is not None:
            return "unchanged"
        session.add(DatasetRole(**key))
    _audit(db, "role-add", dataset_id, role, subject, issuer)
    return "added"


def remove_role(db: Database, dataset_id: str, role: str, subject: str, issuer: str = "") -> str:
    """Take the role away. Returns "removed" or "absent"."""
    _check_role(role)
    with db.session() as session:
        row = session.get(
            DatasetRole,
            {"dataset_id": dataset_id, "role": role, "subject": subject, "issuer": issuer},
        )
        if row is None:
            return "absent"
        session.delete(row)
    _audit(db, "role-remove", dataset_id, role, subject, issuer)
    return "removed"


def list_roles(db: Database, dataset_id: str | None = None, role: str | None = None):
    with db.session() as session:
        query = sa.select(DatasetRole).order_by(
            DatasetRole.dataset_id, DatasetRole.role, DatasetRole.subject
        )
        if dataset_id is not None:
            query = query.where(DatasetRole.dataset_id == dataset_id)
        if role is not None:
            query = query.where(DatasetRole.role == role)
        return [
            RoleHolder(r.dataset_id, r.role, r.subject, r.issuer) for r in session.scalars(query)
        ]


def has_role(db: Database, caller: Caller, dataset_id: str, role: str) -> bool:
    """Does the caller hold the role on the dataset? Anonymous callers never do."""
    return dataset_id in datasets_with_role(db, caller, role)


def datasets_with_role(db: Database, caller: Caller, role: str) -> frozenset[str]:
    """The datasets on which the caller holds the role."""
    _check_role(role)
    match = _matches(caller)
    if match is None:
        return frozenset()
    with db.session() as session:
        return frozenset(
            session.scalars(
                sa.select(DatasetRole.dataset_id).where(DatasetRole.role == role, match)
            )
        )


def _audit(db: Database, action: str, dataset_id: str, role: str, subject: str, issuer: str):
    query = {"role": role, "subject": subject, "issuer": issuer}
    append_operator(db, api="access", action=action, dataset_id=dataset_id, query=query)
