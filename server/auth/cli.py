"""``genomeport token ...``: run a local development issuer and mint tokens;
``genomeport access ...``: data-use terms, applications and grants."""

from __future__ import annotations

import json

import click

from server.auth.issuer import DEFAULT_ISSUER, LocalIssuer


def _settings():
    obj = click.get_current_context().obj
    if obj is None or not hasattr(obj, "settings"):
        from server.settings import Settings

        return Settings.from_env()
    return obj.settings


issuer_option = click.option(
    "--issuer",
    "issuer_url",
    default=DEFAULT_ISSUER,
    show_default=True,
    help="Issuer URL (the 'iss' of minted tokens; the server listens on its port).",
)


@click.group("token")
def token() -> None:
    """Local development token issuer (keys under <var_dir>/issuer/).

    It mints real signed access tokens, GA4GH Passports and Visas, and serves
    the JWKS, discovery document and userinfo endpoint that let the node
    verify them. Trust it by adding the entry printed by `genomeport token
    config` to the auth_issuers setting. Never use it in production.
    """


@token.command("serve")
@issuer_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", type=int, default=None, help="Port to bind (default: the port of --issuer)."
)
def serve(issuer_url: str, host: str, port: int | None) -> None:
    """Serve /jwks, /.well-known/openid-configuration and /userinfo until interrupted."""
    issuer = LocalIssuer.for_settings(_settings(), issuer_url)
    server = issuer.make_server(host, port)
    click.echo(
        f"development issuer {issuer.issuer} listening on http://{host}:{server.server_address[1]}",
        err=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@token.command("config")
@issuer_option
@click.option(
    "--mode",
    type=click.Choice(["jwks", "discovery", "jwks_uri"]),
    default="jwks",
    show_default=True,
    help="jwks: keys inline (no server needed except for userinfo); "
    "discovery/jwks_uri: fetched from the running issuer.",
)
def config(issuer_url: str, mode: str) -> None:
    """Print the auth_issuers value (JSON) that makes the node trust this issuer."""
    issuer = LocalIssuer.for_settings(_settings(), issuer_url)
    click.echo(json.dumps([issuer.settings_entry(mode)]))


@token.command("mint")
@issuer_option
@click.option("--sub", required=True, help="Subject (user id) of the token.")
@click.option(
    "--grant",
    "grants",
    multiple=True,
    metavar="VALUE",
    help="Add a ControlledAccessGrants visa (a dataset's grant value, by default "
    "its id). Repeatable.",
)
@click.option(
    "--registered",
    is_flag=True,
    help="Add ResearcherStatus + AcceptedTermsAndPolicies visas (registered access).",
)
@click.option(
    "--expires-in", type=int, default=3600, show_default=True, help="Token lifetime in seconds."
)
@click.option(
    "--visa-expires-in",
    type=int,
    default=None,
    help="Visa lifetime in seconds (default: same as the token).",
)
@click.option("--audience", default=None, help="'aud' claim (default: the node's audience).")
@click.option(
    "--kind",
    type=click.Choice(["passport", "access-token"]),
    default="passport",
    show_default=True,
    help="passport: visas embedded (typ vnd.ga4gh.passport+jwt); access-token: no "
    "visas in the token, they are recorded for this issuer's /userinfo.",
)
@click.option(
    "--alg",
    type=click.Choice(["RS256", "ES256"]),
    default="RS256",
    show_default=True,
    help="Signing algorithm.",
)
def mint(
    issuer_url, sub, grants, registered, expires_in, visa_expires_in, audience, kind, alg
) -> None:
    """Mint a signed token and print it (to stdout, nothing else)."""
    settings = _settings()
    issuer = LocalIssuer.for_settings(settings, issuer_url)
    audience = audience or settings.audience
    visa_ttl = visa_expires_in if visa_expires_in is not None else expires_in
    if kind == "passport":
        visas = [issuer.grant_visa(sub, g, expires_in=visa_ttl) for g in grants]
        if registered:
            visas += issuer.registered_visas(sub, expires_in=visa_ttl)
        click.echo(issuer.passport(sub, visas, audience=audience, expires_in=expires_in, alg=alg))
    else:
        issuer.set_user(sub, grants=list(grants), registered=registered, visa_expires_in=visa_ttl)
        click.echo(issuer.access_token(sub, audience=audience, expires_in=expires_in, alg=alg))


# ------------------------------------------------------------ access
@click.group("access")
def access_group() -> None:
    """Data access management: data-use terms, applications, grants.

    Researchers apply and DAC members decide through the /access API or the
    pages under /portal; name DAC members with `genomeport dataset dac add`.
    Operators set each dataset's data-use conditions, follow the
    applications and may revoke any grant here. Every change is audited
    (`genomeport audit list --api access`).
    """


def _db():
    obj = click.get_current_context().obj
    return obj.db


def _fail(exc) -> click.ClickException:
    return click.ClickException(str(exc))


@access_group.command("terms")
@click.argument("dataset_id")
@click.argument("duo_terms", nargs=-1)
@click.option("--text", default="", help="The conditions in words, shown to applicants.")
def access_terms(dataset_id: str, duo_terms: tuple[str, ...], text: str) -> None:
    """Set the data-use conditions (DUO term ids such as DUO:0000007) that
    applicants for DATASET_ID must accept. Without terms, shows the current ones."""
    from server.auth import access
    from server.errors import ServiceError

    db = _db()
    try:
        if duo_terms:
            result = access.set_terms(db, dataset_id, list(duo_terms), text)
        else:
            with db.session() as session:
                duo, words = access.terms_of(session, dataset_id)
            result = {"dataset": dataset_id, "duo": duo, "text": words}
    except ServiceError as exc:
        raise _fail(exc) from None
    click.echo(json.dumps(result, indent=2))


@access_group.command("grants")
@click.option("--dataset", "dataset_id", default=None, help="Only grants on this dataset.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def access_grants(dataset_id: str | None, as_json: bool) -> None:
    """List every grant: active, expired and revoked."""
    from server.auth import access

    grants = [g for g in access.all_grants(_db()) if dataset_id in (None, g["dataset"])]
    if as_json:
        click.echo(json.dumps(grants, indent=2))
        return
    for g in grants:
        click.echo(f"{g['id']:>5} {g['dataset']:<20} {g['state']:<8} {g['expires']} {g['subject']}")


@access_group.command("revoke")
@click.argument("grant_id", type=int)
@click.option("--comment", default="", help="Why (kept with the application's history).")
def access_revoke(grant_id: int, comment: str) -> None:
    """Revoke a grant now: every API, and the URLs already handed out, close
    within GENOMEPORT_ACCESS_CACHE_SECONDS."""
    from server.auth import access
    from server.errors import ServiceError

    try:
        grant = access.revoke_as_operator(_db(), grant_id, comment)
    except ServiceError as exc:
        raise _fail(exc) from None
    click.echo(f"revoked: grant {grant['id']} of {grant['subject']} on {grant['dataset']}")


commands = [token, access_group]
