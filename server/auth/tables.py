"""Tables of ``server.auth``: roles on datasets, and data access management
(data-use terms, applications, their steps, grants)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, Document
from server.db.tables import utcnow


class DatasetRole(Base):
    """One role of one subject on one dataset.

    ``subject`` is the token's ``sub``; ``issuer`` the ``iss`` it must come
    from, or ``""`` for a subject of any trusted issuer.
    """

    __tablename__ = "dataset_roles"
    __table_args__ = (sa.Index("ix_dataset_roles_subject", "subject", "role"),)

    dataset_id: Mapped[str] = mapped_column(
        sa.String(128), sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(sa.String(256), primary_key=True)
    issuer: Mapped[str] = mapped_column(sa.String(512), primary_key=True, default="")
    added: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class AccessTerms(Base):
    """The terms in words that applicants of a dataset must accept, beside its
    data-use conditions (the DUO terms of its catalogue metadata, ``data_use``)."""

    __tablename__ = "access_terms"

    dataset_id: Mapped[str] = mapped_column(
        sa.String(128), sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    text: Mapped[str] = mapped_column(sa.Text, default="")  # the terms in words
    updated: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class AccessApplication(Base):
    """One application for access to one dataset, and its current state.

    ``state``: ``submitted`` -> ``approved`` | ``rejected`` | ``returned``;
    a returned application is changed and submitted again by its applicant.
    Every transition is an ``AccessEvent``.
    """

    __tablename__ = "access_applications"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(
        sa.String(128), sa.ForeignKey("datasets.id", ondelete="RESTRICT"), index=True
    )
    subject: Mapped[str] = mapped_column(sa.String(256))  # the applicant's token ``sub``
    issuer: Mapped[str] = mapped_column(sa.String(512))  # and ``iss``
    caller: Mapped[str] = mapped_column(sa.String(800), index=True)  # "issuer|sub"
    title: Mapped[str] = mapped_column(sa.String(512))
    purpose: Mapped[list] = mapped_column(Document, default=list)  # DUO terms of the research
    institution: Mapped[str] = mapped_column(sa.String(512))
    accepted_terms: Mapped[list] = mapped_column(Document, default=list)  # DUO terms accepted
    state: Mapped[str] = mapped_column(sa.String(16), index=True)
    created: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class AccessEvent(Base):
    """One step of an application, never changed: who did what, when and why."""

    __tablename__ = "access_events"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("access_applications.id", ondelete="CASCADE"), index=True
    )
    time: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(800))  # caller label or operator:<user>
    action: Mapped[str] = mapped_column(sa.String(32))  # submit, approve, reject, return, revoke
    comment: Mapped[str] = mapped_column(sa.Text, default="")
    state: Mapped[str] = mapped_column(sa.String(16))  # the state after the step


class AccessGrant(Base):
    """Access to one dataset for one subject, from one approved application.

    Active while ``revoked`` is null and ``expires`` is in the future.
    """

    __tablename__ = "access_grants"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("access_applications.id", ondelete="RESTRICT"), unique=True
    )
    dataset_id: Mapped[str] = mapped_column(
        sa.String(128), sa.ForeignKey("datasets.id", ondelete="RESTRICT"), index=True
    )
    subject: Mapped[str] = mapped_column(sa.String(256))
    issuer: Mapped[str] = mapped_column(sa.String(512))
    caller: Mapped[str] = mapped_column(sa.String(800), index=True)
    duo: Mapped[list] = mapped_column(Document, default=list)  # the accepted data-use terms
    granted: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    granted_by: Mapped[str] = mapped_column(sa.String(800))
    expires: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    revoked: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    revoked_by: Mapped[str] = mapped_column(sa.String(800), default="")
