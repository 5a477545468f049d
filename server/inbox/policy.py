"""Per-dataset transfer policy: a dataset whose files leave the node encrypted only."""

from __future__ import annotations

import getpass

from server.db import Database
from server.errors import NotFound
from server.inbox.service import audit
from server.inbox.tables import TransferPolicy


def set_encrypted_only(db: Database, dataset_id: str, required: bool) -> str:
    """Require (or stop requiring) encrypted transfer. Returns "changed" or "unchanged"."""
    from server.db.tables import Dataset

    with db.session() as session:
        if session.get(Dataset, dataset_id) is None:
            raise NotFound(f"no dataset {dataset_id!r}")
        row = session.get(TransferPolicy, dataset_id)
        current = bool(row is not None and row.encrypted_only)
        if current == required:
            return "unchanged"
        if row is None:
            session.add(TransferPolicy(dataset_id=dataset_id, encrypted_only=required))
        else:
            row.encrypted_only = required
    operator = f"operator:{getpass.getuser()}"
    query = {"encrypted_only": required}
    audit(db, operator, "policy.encrypted-only", dataset_id=dataset_id, query=query)
    return "changed"
