"""Tables of ``server.auth``: who holds which role on which dataset."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base
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
