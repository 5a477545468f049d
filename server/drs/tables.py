"""DRS tables: WES run outputs published as DRS objects.

Registered files need no table of their own (their DRS objects are derived
from ``DataFile`` rows, see ``server.drs.ids``).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base
from server.db.tables import utcnow


class WesOutputObject(Base):
    """One output file of one WES run; readable by the run's owner only."""

    __tablename__ = "drs_wes_outputs"
    __table_args__ = (sa.UniqueConstraint("run_id", "name"),)

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # wes~<hex>
    run_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    name: Mapped[str] = mapped_column(sa.String(256))
    owner: Mapped[str] = mapped_column(sa.String(512), index=True)  # Caller.label
    location: Mapped[str] = mapped_column(sa.Text)  # absolute path on the node
    url_key: Mapped[str] = mapped_column(sa.Text)  # key for sign_url(settings, "wes", key)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    md5: Mapped[str] = mapped_column(sa.String(32))
    created: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
