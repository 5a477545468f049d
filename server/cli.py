"""The ``genomeport`` command line: one click group for every operation.

Settings come from ``GENOMEPORT_*`` environment variables and the optional
TOML file named by ``GENOMEPORT_CONFIG`` (see the README's settings table).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import click

from server.errors import ServiceError
from server.settings import Settings, SettingsError

# API packages contribute their own commands through server.<api>.cli.commands
COMMAND_MODULES = (
    "server.beacon.cli",
    "server.wes.cli",
    "server.auth.cli",
    "server.drs.cli",
    "server.inbox.cli",
)


@dataclass
class Ctx:
    settings: Settings
    _db: object = field(default=None, repr=False)

    @property
    def db(self):
        """The database, created on first use and migrated to the newest schema."""
        if self._db is None:
            from server.db import Database

            Path(self.settings.var_dir).mkdir(parents=True, exist_ok=True)
            self._db = Database(self.settings.effective_database_url)
            self._db.upgrade()
        return self._db


class Group(click.Group):
    """Turns the node's own errors into one clear line and exit code 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ServiceError as exc:
            raise click.ClickException(str(exc)) from None
        except SettingsError as exc:
            raise click.ClickException(f"configuration error: {exc}") from None


@click.group(
    cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(package_name="genomeport")
@click.pass_context
def main(ctx: click.Context) -> None:
    """genomeport: a GA4GH node for national genome data.

    It serves htsget 1.3 (/reads, /variants), Beacon v2 (/beacon/v2), WES 1.1
    (/ga4gh/wes/v1) and DRS 1.5 (/ga4gh/drs/v1) over the datasets and files you
    register, behind one access-control model (OIDC tokens and GA4GH Passports).

    Configuration is read from GENOMEPORT_* environment variables and an
    optional TOML file named by GENOMEPORT_CONFIG. Without any, the node keeps
    its SQLite database under ./var and serves only public datasets.

    Typical start: `genomeport demo`, or `genomeport dataset add ...`,
    `genomeport files add ...`, then `genomeport serve`.
    """
    if ctx.obj is None:
        try:
            ctx.obj = Ctx(Settings.from_env())
        except SettingsError as exc:
            raise click.ClickException(f"configuration error: {exc}") from None
        from server.logging import configure

        configure(
            ctx.obj.settings.log_level
            if ctx.invoked_subcommand in ("serve", "worker")
            else "WARNING",
            ctx.obj.settings.log_format
            if ctx.invoked_subcommand in ("serve", "worker")
            else "text",
        )


# ---------------------------------------------------------------- db
@main.group()
def db() -> None:
    """Database schema: apply migrations or show the current revision."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(obj: Ctx) -> None:
    """Apply every pending migration (SQLite or PostgreSQL, from GENOMEPORT_DATABASE_URL)."""
    from server.db.migrate import current

    click.echo(f"database at revision(s): {', '.join(sorted(current(obj.db))) or 'none'}")


# ---------------------------------------------------------------- datasets
@main.group()
def dataset() -> None:
    """Datasets: the unit of access control (public, registered or controlled)."""


_METADATA_HELP = (
    "YAML or JSON file of the dataset's catalogue metadata (title, description, "
    "keywords, themes, publisher, contact, licence, access_rights, data_use as DUO "
    "terms, population_coverage, number_of_individuals, issued, modified, catalogue); "
    "it answers Beacon /datasets and the FAIR Data Point. See the README."
)


def _dataset_command(name: str, *, required_access: bool):
    """``genomeport dataset NAME DATASET_ID`` with the options of a dataset's settings."""

    def wrap(fn):
        fn = click.pass_obj(fn)
        for option in reversed(
            [
                click.option(
                    "--access",
                    required=required_access,
                    default=None,
                    type=click.Choice(["public", "registered", "controlled"]),
                    help="public: anyone; registered: any caller with a ResearcherStatus or "
                    "AcceptedTermsAndPolicies visa; controlled: only holders of a "
                    "ControlledAccessGrants visa for this dataset.",
                ),
                click.option("--name", default="", help="Human-readable name (default: the id)."),
                click.option("--assembly", default="", help="Reference assembly, e.g. GRCh38."),
                click.option(
                    "--description", default="", help="Free text shown in Beacon and service-info."
                ),
                click.option(
                    "--grant-value",
                    default="",
                    help="The ControlledAccessGrants visa value that grants access "
                    "(default: the dataset id).",
                ),
                click.option(
                    "--metadata",
                    "metadata_file",
                    default=None,
                    type=click.Path(exists=True, dir_okay=False),
                    help=_METADATA_HELP,
                ),
            ]
        ):
            fn = option(fn)
        return dataset.command(name)(click.argument("dataset_id")(fn))

    return wrap


def _save_dataset(obj: Ctx, dataset_id, access, name, assembly, description, grant_value, path):
    from server.catalogue import metadata
    from server.registry import add_dataset

    if path:
        metadata.read_file(path)  # a bad file is refused before anything is written
    row, outcome = add_dataset(
        obj.db,
        dataset_id,
        access=access,
        name=name,
        assembly=assembly,
        description=description,
        grant_value=grant_value,
    )
    click.echo(f"{outcome}: dataset {row.id} ({row.access})")
    if path:
        click.echo(f"{metadata.store(obj.db, dataset_id, path)}: metadata of {row.id} from {path}")
        _report_check(obj, [dataset_id])


def _report_check(obj: Ctx, dataset_ids) -> bool:
    """Print whether each dataset's FAIR Data Point record is published; True if all are."""
    from server.catalogue import fdp

    ok = True
    with obj.db.session() as session:
        node = fdp.load(session, obj.settings)
        for did in dataset_ids or sorted(node.metadata):
            if did not in node.metadata:
                raise click.ClickException(f"no dataset {did!r}")
            found = node.problems.get(did, [])
            if not found:
                click.echo(f"{did}: published in the FAIR Data Point")
                continue
            ok = False
            click.echo(f"{did}: NOT published; its metadata does not conform to the shapes:")
            for text in found:
                click.echo(f"  - {text}")
    return ok


@_dataset_command("add", required_access=True)
def dataset_add(
    obj: Ctx, dataset_id, access, name, assembly, description, grant_value, metadata_file
) -> None:
    """Create DATASET_ID, or update its settings if it exists (idempotent); with
    --metadata, keep its catalogue metadata too."""
    _save_dataset(obj, dataset_id, access, name, assembly, description, grant_value, metadata_file)


@_dataset_command("update", required_access=False)
def dataset_update(
    obj: Ctx, dataset_id, access, name, assembly, description, grant_value, metadata_file
) -> None:
    """Change an existing DATASET_ID: only the options given (its metadata with
    --metadata FILE, which replaces the earlier file)."""
    from server.registry import get_dataset

    with obj.db.session() as session:
        row = get_dataset(session, dataset_id)
        access = access or row.access
        grant_value = grant_value or row.grant_value
    _save_dataset(obj, dataset_id, access, name, assembly, description, grant_value, metadata_file)


@dataset.command("check")
@click.argument("dataset_ids", nargs=-1)
@click.pass_obj
def dataset_check(obj: Ctx, dataset_ids) -> None:
    """Validate each dataset's FAIR Data Point record (default: every dataset)
    against the SHACL shapes the FDP serves, and say why one is not published.
    Exits 1 when any is not."""
    if not _report_check(obj, list(dataset_ids)):
        raise SystemExit(1)


@dataset.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def dataset_list(obj: Ctx, as_json: bool) -> None:
    """List registered datasets."""
    from server.registry import list_datasets

    with obj.db.session() as session:
        rows = [
            {"id": d.id, "access": d.access, "name": d.name, "assembly": d.assembly}
            for d in list_datasets(session)
        ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"{r['id']:<24} {r['access']:<11} {r['assembly']:<10} {r['name']}")


# ------------------------------------------------------- roles on datasets
ROLE_HELP = {
    "dac": "Members of a dataset's data access committee: they review and decide "
    "the dataset's access applications.",
    "submitter": "Submitters of a dataset: they may upload files into it through the inbox.",
}


def _role_group(role: str) -> click.Group:
    @click.group(role, help=ROLE_HELP[role])
    def group() -> None:
        pass

    issuer_option = click.option(
        "--issuer",
        default="",
        help="Only tokens from this issuer (its 'iss') match; default: any trusted issuer.",
    )

    def holder_command(name: str):
        """A command on one holder of the role: DATASET_ID SUBJECT [--issuer]."""

        def decorate(f):
            f = issuer_option(click.pass_obj(f))
            f = click.argument("dataset_id")(click.argument("subject")(f))
            return group.command(name)(f)

        return decorate

    @holder_command("add")
    def add(obj: Ctx, dataset_id, subject, issuer) -> None:
        """Give SUBJECT (a token's 'sub') the role on DATASET_ID (idempotent, audited)."""
        from server.auth.roles import add_role

        outcome = add_role(obj.db, dataset_id, role, subject, issuer)
        click.echo(f"{outcome}: {subject} is {role} of {dataset_id}")

    @holder_command("remove")
    def remove(obj: Ctx, dataset_id, subject, issuer) -> None:
        """Take the role on DATASET_ID away from SUBJECT (audited)."""
        from server.auth.roles import remove_role

        outcome = remove_role(obj.db, dataset_id, role, subject, issuer)
        if outcome == "absent":
            raise click.ClickException(f"{subject} is not {role} of {dataset_id}")
        click.echo(f"{outcome}: {subject} is no longer {role} of {dataset_id}")

    @group.command("list")
    @click.argument("dataset_id", required=False)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    @click.pass_obj
    def list_(obj: Ctx, dataset_id, as_json) -> None:
        """List who holds the role (on DATASET_ID, or on every dataset)."""
        from server.auth.roles import list_roles

        holders = list_roles(obj.db, dataset_id, role)
        if as_json:
            click.echo(json.dumps([h.__dict__ for h in holders], indent=2))
            return
        for h in holders:
            click.echo(f"{h.dataset_id:<24} {h.subject:<40} {h.issuer or '(any trusted issuer)'}")

    return group


for _role in ROLE_HELP:
    dataset.add_command(_role_group(_role))


# ---------------------------------------------------------------- files
@main.group()
def files() -> None:
    """Data files (BAM, CRAM, VCF, BCF) served through htsget and DRS."""


@files.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--dataset", "dataset_id", required=True, help="Dataset the files belong to.")
@click.option(
    "--id",
    "object_id",
    default=None,
    help="Object id shared by these files (default: the file name without extensions). "
    "A sample's BAM and CRAM, or a cohort's VCF and BCF, share one id; htsget's "
    "`format` picks among them.",
)
@click.option(
    "--reference",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Reference FASTA for CRAM files whose reference is not embedded.",
)
@click.option("--update", is_flag=True, help="Accept a file whose content or location changed.")
@click.option("--verify", is_flag=True, help="Re-hash files even if size and mtime are unchanged.")
@click.option(
    "--beacon",
    is_flag=True,
    help="Crypt4GH VCF/BCF files (FILE.vcf.gz.c4gh, FILE.bcf.c4gh) only: also load their "
    "genotypes into the dataset's Beacon, as an inbox upload with beacon: true.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
def files_add(
    obj: Ctx, paths, dataset_id, object_id, reference, update, verify, beacon, quiet
) -> None:
    """Register PATHS: check each opens with its index, compute sha-256 and md5.

    Each file is written in its own transaction only after every check passed,
    so an interrupted run leaves nothing half-written. Adding the same file
    twice changes nothing; a file whose bytes changed is refused without --update.

    A Crypt4GH file (FILE.c4gh, encrypted for the node's key) goes through the
    ingest pipeline instead, as an inbox upload would: checked, archived under
    an accession and registered (its index: FILE.bai.c4gh, .crai, .tbi or .csi
    beside it, or one is built), then, with --beacon, loaded into the Beacon
    from its archived copy decrypted in memory.
    """
    from server.registry import add_files

    encrypted = [p for p in paths if str(p).endswith(".c4gh")]
    if beacon and len(encrypted) != len(paths):
        raise click.UsageError(
            "--beacon is for Crypt4GH files; load plaintext VCF/BCF files with "
            "`genomeport beacon add-genome` or `genomeport beacon load-vcf`"
        )
    if encrypted:
        from server.inbox.cli import add_encrypted

        add_encrypted(obj, encrypted, dataset_id, object_id, beacon=beacon, progress=not quiet)
        paths = [p for p in paths if not str(p).endswith(".c4gh")]
        if not paths:
            return

    for result in add_files(
        obj.db,
        paths,
        dataset_id,
        object_id=object_id,
        reference=reference,
        update=update,
        verify=verify,
        progress=not quiet,
    ):
        click.echo(f"{result.outcome}: {result.object_id} {result.format} {result.path}")


@files.command("verify")
@click.argument("object_ids", nargs=-1)
@click.option("--dataset", "dataset_id", default=None, help="Only files of this dataset.")
@click.option("--quiet", is_flag=True, help="No progress bar; print only the files that changed.")
@click.pass_obj
def files_verify(obj: Ctx, object_ids, dataset_id, quiet) -> None:
    """Re-hash registered files and report any that changed since registration.

    Reads every byte of each file and of its index (all registered files, or
    only OBJECT_IDS / --dataset), with a progress bar in bytes, and compares
    size, modification time, sha-256 and md5 with what `files add` recorded.
    The data plane already refuses to serve a file whose size or modification
    time changed; this also finds bytes changed in place. Exits with status 1
    when any file changed or is missing (for cron and monitoring), 0 when all
    are intact. To accept a file's new content, register it again:
    `genomeport files add PATH --dataset ID --update`.

    An archived Crypt4GH file (FILE.c4gh, from the inbox or `files add
    FILE.c4gh`) is decrypted in memory as it is read, never to disk: its
    header must open with the node's key and every 64 KiB segment
    authenticate (so altered encrypted bytes are found), and the plaintext's
    size, sha-256 and md5 must be those registered at ingest.
    """
    from server.registry import verify_files

    results = verify_files(
        obj.db, object_ids, dataset_id=dataset_id, progress=not quiet, settings=obj.settings
    )
    changed = [r for r in results if not r.ok]
    for r in results:
        if r.ok and not quiet:
            click.echo(f"ok: {r.object_id} {r.format}")
        elif not r.ok:
            click.echo(f"CHANGED: {r.object_id} {r.format}: {'; '.join(r.problems)}")
    click.echo(f"{len(results) - len(changed)} intact, {len(changed)} changed", err=True)
    if changed:
        raise SystemExit(1)


@files.command("list")
@click.option("--dataset", "dataset_id", default=None, help="Only files of this dataset.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def files_list(obj: Ctx, dataset_id, as_json) -> None:
    """List registered files with their checksums."""
    from server.registry import list_files

    with obj.db.session() as session:
        rows = [
            {
                "id": f.object_id,
                "format": f.format,
                "dataset": f.dataset_id,
                "size": f.size,
                "sha256": f.sha256,
                "location": f.location,
            }
            for f in list_files(session, dataset_id)
        ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(
            f"{r['id']:<28} {r['format']:<5} {r['dataset']:<16} {r['size']:>12} {r['sha256'][:16]}"
        )


# ---------------------------------------------------------------- serving
def run_node(obj: Ctx, settings: Settings, *, workers: int | None = None) -> None:
    """Migrate, then run gunicorn in this process until SIGTERM or SIGINT."""
    from server.web.serve import run

    obj.db.dispose()  # first use migrates; no pooled connection may reach the forked workers
    obj._db = None
    run(settings, workers=workers)


@main.command()
@click.option("--host", default=None, help="Address to bind (default GENOMEPORT_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default GENOMEPORT_PORT, 8080).")
@click.option("--workers", type=int, default=None, help="gunicorn worker processes (default 2).")
@click.pass_obj
def serve(obj: Ctx, host, port, workers) -> None:
    """Run the node under gunicorn with uvicorn workers.

    Migrations are applied once before the workers start. Without
    GENOMEPORT_PUBLIC_URL, the URLs the node hands out name the address it
    binds (http://HOST:PORT); behind a proxy or on 0.0.0.0, set it to the
    address clients use. SIGTERM stops the node gracefully, SIGINT (Ctrl-C) at
    once; the command returns when every worker has stopped.
    """
    settings = obj.settings.with_overrides(
        host=host or obj.settings.host, port=port or obj.settings.port
    )
    run_node(obj, settings, workers=workers)


def _register_api_commands() -> None:
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        for command in getattr(module, "commands", []):
            main.add_command(command)


from server.demo import demo  # noqa: E402

main.add_command(demo)
_register_api_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
