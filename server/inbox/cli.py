"""``genomeport crypt4gh`` (the node's key pair) and ``genomeport ingest`` (the pipeline)."""

from __future__ import annotations

import getpass
import json

import click


@click.group("crypt4gh")
def crypt4gh() -> None:
    """The node's Crypt4GH key pair: submitters encrypt for it, the archive is kept under it.

    The secret key is protected by a passphrase taken from GENOMEPORT_C4GH_PASSPHRASE
    or from the file GENOMEPORT_C4GH_PASSPHRASE_FILE (readable by the node only).
    """


@crypt4gh.command("keygen")
@click.option("--comment", default="genomeport node", help="Comment stored in the key files.")
@click.pass_obj
def keygen(obj, comment) -> None:
    """Create the node's key pair in GENOMEPORT_C4GH_KEY_DIR (default var/keys).

    Refuses to replace an existing pair: `genomeport crypt4gh rotate` does that.
    """
    from server.c4gh.keys import current_key_id, keygen

    path = keygen(obj.settings, comment=comment)
    click.echo(
        f"created the node's key pair; public key {path} (key id {current_key_id(obj.settings)})"
    )


@crypt4gh.command("public-key")
@click.pass_obj
def public_key(obj) -> None:
    """Print the public key (as served at GET /inbox/public-key), for
    `crypt4gh encrypt --recipient_pk`."""
    from server.c4gh.keys import public_key_pem

    click.echo(public_key_pem(obj.settings), nl=False)


@crypt4gh.command("rotate")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
def rotate(obj, quiet) -> None:
    """Move every archived file to a new key pair, re-encrypting headers only.

    The data segments are copied unchanged behind a header for the new key; the
    old pair is retired (kept under retired/ for uploads encrypted before the
    rotation). An interrupted rotation is finished by running it again.
    """
    from tqdm import tqdm

    from server.inbox.rotation import archived_files, rotate

    total = len(archived_files(obj.db))
    with tqdm(total=total, unit="file", desc="re-encrypting headers", disable=quiet) as bar:
        old, new, count = rotate(obj.settings, obj.db, bar.update)
    click.echo(f"rotated {count} archived file(s) from key {old} to key {new}")


@crypt4gh.command("require-encryption")
@click.argument("dataset_id")
@click.option("--off", is_flag=True, help="Allow plaintext transfer again.")
@click.pass_obj
def require_encryption(obj, dataset_id, off) -> None:
    """Serve DATASET's archived files encrypted only: plaintext htsget tickets and
    plaintext data URLs are refused; C4GH tickets (encryptionScheme=C4GH with the
    caller's client-public-key) are the way out. Audited."""
    from server.inbox.policy import set_encrypted_only

    outcome = set_encrypted_only(obj.db, dataset_id, not off)
    state = "plaintext allowed" if off else "encrypted transfer required"
    click.echo(f"{outcome}: dataset {dataset_id}: {state}")


@click.group("ingest")
def ingest() -> None:
    """The ingest pipeline: uploads in the inbox checked, archived and registered."""


@ingest.command("list")
@click.option("--dataset", "dataset_id", default=None, help="Only uploads to this dataset.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def ingest_list(obj, dataset_id, as_json) -> None:
    """Every upload with its state (uploading, received, queued, ingesting,
    ingested, rejected), its accession, its Beacon step (for an upload asked
    for the Beacon: asked, loading, loaded, unchanged or failed) and, for a
    rejected one, the reason."""
    from server.inbox.ingest import list_uploads

    rows = [
        {
            "id": r.id,
            "dataset": r.dataset_id,
            "kind": r.kind,
            "filename": r.filename,
            "state": r.state,
            "accession": r.accession,
            "format": r.format,
            "submitter": r.submitter,
            "beacon": r.beacon,
            "beacon_state": r.beacon_state,
            "reason": r.reason,
        }
        for r in list_uploads(obj.db, dataset_id)
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        step = (r["beacon_state"] or "asked") if r["beacon"] else "-"
        line = (
            f"{r['id'][:12]} {r['dataset']:<14} {r['kind']:<5} {r['state']:<9} "
            f"{r['accession'] or '-':<13} {r['format'] or '-':<4} beacon:{step:<9} "
            f"{r['filename']}"
        )
        click.echo(line + (f"  ({r['reason']})" if r["reason"] else ""))


@ingest.command("work")
@click.option("--once", is_flag=True, help="Exit when the queue is empty.")
@click.option("--idle-exit", type=float, default=None, help="Exit after this many idle seconds.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_obj
def ingest_work(obj, once, idle_exit, quiet) -> None:
    """Claim queued uploads and ingest them, until stopped.

    Any number of these processes may run on any number of hosts sharing the
    database and the inbox; an upload whose worker died is taken over when its
    lease (GENOMEPORT_INGEST_LEASE_SECONDS) runs out. An upload asked for the
    Beacon is loaded into it after its registration, from the archived copy
    decrypted in memory. Each upload shows a progress bar (on stderr).
    """
    from server.inbox.ingest import Ingest

    n = Ingest(obj.settings, obj.db, progress=not quiet).work(once=once, idle_exit=idle_exit)
    click.echo(f"processed {n} upload(s)")


def add_encrypted(
    obj, paths, dataset_id, object_id, *, beacon: bool = False, progress: bool = True
) -> None:
    """``genomeport files add FILE.c4gh``: queue each file as an upload and ingest it
    here, exactly as an inbox upload (its index: FILE.<bai|crai|tbi|csi>.c4gh beside
    it), with a progress bar; ``beacon``: loaded into the Beacon too."""
    from pathlib import Path

    from server.errors import InvalidInput
    from server.inbox.ingest import Ingest, enqueue_local
    from server.inbox.service import check_beacon_upload

    if beacon:
        for raw in paths:
            try:
                check_beacon_upload(Path(raw).name, "data")
            except InvalidInput as exc:
                raise click.UsageError(str(exc)) from None
    worker = Ingest(obj.settings, obj.db, progress=progress)
    for raw in paths:
        path = Path(raw).resolve()
        stem = str(path)[: -len(".c4gh")]
        index = next(
            (
                Path(stem + ext + ".c4gh")
                for ext in (".bai", ".csi", ".crai", ".tbi")
                if Path(stem + ext + ".c4gh").is_file()
            ),
            None,
        )
        row = enqueue_local(
            obj.settings,
            obj.db,
            path,
            dataset_id,
            object_id=object_id or "",
            index=index,
            operator=f"operator:{getpass.getuser()}",
            beacon=beacon,
        )
        claimed = worker.claim()
        while claimed is not None and claimed.pk != row.pk:  # others queued first: theirs too
            worker.process(claimed)
            claimed = worker.claim()
        if claimed is not None:
            worker.process(claimed)
        from server.inbox.ingest import list_uploads

        done = next(r for r in list_uploads(obj.db, dataset_id) if r.pk == row.pk)
        if done.state != "ingested":
            raise click.ClickException(f"{path}: {done.state}: {done.reason}")
        loaded = f" (Beacon: {done.beacon_state})" if done.beacon else ""
        click.echo(f"ingested: {done.object_id or done.accession} {done.format} {path}{loaded}")


commands: list[click.Command] = [crypt4gh, ingest]
