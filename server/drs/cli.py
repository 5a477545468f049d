"""``genomeport audit ...``: read the node's append-only audit log."""

from __future__ import annotations

import json

import click

from server import audit


def _filter_options(fn):
    options = [
        click.option(
            "--caller",
            default=None,
            help="Caller label (issuer|sub, or 'anonymous'); '*' is a wildcard, e.g. '*|alice'.",
        ),
        click.option("--dataset", default=None, help="Dataset id."),
        click.option(
            "--api",
            type=click.Choice(list(audit.APIS)),
            default=None,
            help="API the event came from; 'data' is the /data/ plane (the bytes "
            "behind htsget tickets, DRS access URLs and WES log/output URLs).",
        ),
        click.option(
            "--action",
            default=None,
            help="Action name, e.g. get_object, access_url, ticket.reads, download.file.",
        ),
        click.option(
            "--outcome",
            type=click.Choice(list(audit.OUTCOMES)),
            default=None,
            help="Decision outcome.",
        ),
        click.option(
            "--since",
            default=None,
            help="Only events at or after this time (ISO 8601, or relative: -2h, -7d).",
        ),
        click.option("--until", default=None, help="Only events before this time."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _make_filter(caller, dataset, api, action, outcome, since, until, limit=100):
    return audit.AuditFilter(
        caller=caller,
        dataset=dataset,
        api=api,
        action=action,
        outcome=outcome,
        since=audit.parse_time(since) if since else None,
        until=audit.parse_time(until) if until else None,
        limit=limit,
    )


@click.group("audit")
def audit_group() -> None:
    """Query the audit log: every access decision and data access on this node.

    Each event names the caller (issuer|subject, never a token), the time, the
    API and action, the dataset and object, the query or region, the outcome
    (granted, denied, error) and the HTTP status. The log is append-only.

    Downloads through signed /data/ URLs are events of api 'data' (action
    download.file, download.index, download.wes, or head.*), refused ones
    included; their query holds the byte range [start, end) served, the bytes
    sent and the file format, never the URL's signature.
    """


@audit_group.command("list")
@_filter_options
@click.option(
    "--limit",
    type=click.IntRange(1, 100000),
    default=100,
    show_default=True,
    help="Most recent events to show.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_events(caller, dataset, api, action, outcome, since, until, limit, as_json) -> None:
    """List matching events, newest first."""
    db = click.get_current_context().obj.db
    rows = audit.query(db, _make_filter(caller, dataset, api, action, outcome, since, until, limit))
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, sort_keys=True))
        return
    if not rows:
        click.echo("no matching audit events", err=True)
        return
    for r in rows:
        where = r["dataset_id"] + (f"/{r['object_id']}" if r["object_id"] else "")
        query = json.dumps(r["query"], sort_keys=True) if r["query"] else ""
        click.echo(
            f"{r['time']}  {r['outcome']:<7} {r['status']:>3}  {r['api']:<6} "
            f"{r['action']:<16} {r['caller']}  {where or '-'}  {query}".rstrip()
        )


@audit_group.command("summary")
@_filter_options
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def summary(caller, dataset, api, action, outcome, since, until, as_json) -> None:
    """Count matching events per API, outcome and dataset."""
    db = click.get_current_context().obj.db
    rows = audit.summary(db, _make_filter(caller, dataset, api, action, outcome, since, until))
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        click.echo(f"{r['api']:<7} {r['outcome']:<8} {r['dataset_id'] or '-':<24} {r['count']}")


commands = [audit_group]
