"""Key rotation: every archived Crypt4GH file moved to a new node key, headers only.

``rotate`` writes a new key pair beside the current one (``node.sec.new``),
then, file by file, replaces each archived file (data and index) with the
same data segments behind a header re-encrypted for the new key alone, and
records the file's new modification time in the registry in the same step.
Only when every file is done is the old pair retired (``retired/``) and the
new one put in its place. An interrupted rotation is finished by running it
again: the files already moved open with the new key, the others with the
old one, and both are tried.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from server.c4gh import keys as node_keys
from server.c4gh import stream
from server.db import Database
from server.db.tables import DataFile
from server.inbox.ingest import write_atomic
from server.settings import Settings


def _pending(settings: Settings) -> tuple[Path, Path]:
    sec, pub = node_keys.key_paths(settings)
    return sec.with_name(sec.name + ".new"), pub.with_name(pub.name + ".new")


def rewrite_header(path: Path, keys: list[tuple], recipients: list[tuple]) -> None:
    """Replace the file's header with one for ``recipients``; the segments are copied."""
    with open(path, "rb") as src:
        new = stream.reencrypt(stream.read_header(src), keys, recipients)

        def parts(out) -> None:
            out.write(new)
            while chunk := src.read(1 << 20):
                out.write(chunk)

        write_atomic(path, parts)


def rotate(
    settings: Settings, db: Database, progress: Callable[[int], None] = lambda n: None
) -> tuple[str, str, int]:
    """Move every archived file to a new key. Returns (old key id, new key id, files)."""
    sec, pub = node_keys.key_paths(settings)
    new_sec, new_pub = _pending(settings)
    phrase = node_keys.passphrase(settings)
    old = node_keys.node_key(settings)
    if not new_sec.exists():
        node_keys.generate(new_sec, new_pub, phrase, "genomeport node")
    secret = node_keys.unlock(new_sec, phrase)
    public = node_keys.read_public(new_pub)
    new = node_keys.NodeKey(secret, public, node_keys.key_id(public))
    keys = new.decryption_keys + old.decryption_keys
    with db.session() as session:
        rows = [
            (r.pk, r.location, r.index_location)
            for r in session.scalars(sa.select(DataFile).order_by(DataFile.pk))
            if r.location.endswith(".c4gh")
        ]
    count = 0
    for pk, location, index_location in rows:
        changes = {}
        for column, where in (("mtime_ns", location), ("index_mtime_ns", index_location)):
            if where.endswith(".c4gh") and os.path.isfile(where):
                rewrite_header(Path(where), keys, new.recipients(new.public))
                changes[column] = os.stat(where).st_mtime_ns
                count += 1
                progress(1)
        if changes:
            with db.session() as session:
                session.execute(sa.update(DataFile).where(DataFile.pk == pk).values(**changes))
    node_keys.retire(settings, sec, pub)
    os.replace(new_sec, sec)
    os.replace(new_pub, pub)
    node_keys.clear_cache()
    return old.key_id, new.key_id, count


def archived_files(db: Database) -> list[str]:
    with db.session() as session:
        out = []
        for r in session.scalars(sa.select(DataFile)):
            for where in (r.location, r.index_location):
                if where.endswith(".c4gh"):
                    out.append(where)
        return out
