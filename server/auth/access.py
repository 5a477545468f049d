"""Data access management: applications, DAC decisions, grants, revocation,
and the node's own GA4GH visas.

A researcher applies for a ``controlled`` dataset (``apply``), accepting the
dataset's data-use conditions (DUO terms, ``set_terms``). A member of the
dataset's data access committee (role ``dac``, ``server.auth.roles``)
decides: ``approve`` (a grant until ``expires_in_days``), ``reject``, or
``return`` for changes (the applicant changes it and it is submitted again,
``update``). Nobody decides their own application. Every step is kept as an
``AccessEvent`` and written to the audit log (api ``access``), refusals too.

Grants take part in every access decision: ``with_grants`` adds the grant
values of the caller's active grants to ``Caller.controlled`` (called by
``server.auth.tokens.caller_from_request``), so the caller's existing token
opens the dataset on htsget, DRS, Beacon and WES. ``grant_check`` is the data
plane's re-check of a signed URL at download time: a URL of a caller whose
grants on the dataset were all revoked or have expired is refused. Both
lookups are cached per process for ``GENOMEPORT_ACCESS_CACHE_SECONDS`` (at most
60), so a revocation or expiry closes every API, and the URLs already handed
out, within that bound.

``visas`` signs the caller's active grants as ``ControlledAccessGrants``
visas (``by: dac``) with the node's own visa key (RS256, created on first use
under ``<var_dir>/access/visa-key.json``, mode 0600), whose public half
``jwks`` publishes at ``/access/jwks.json``. A visa's ``conditions`` can only
require other visas, and nodes (this one included) ignore visas that carry
any, so the accepted DUO terms travel in the visa's own ``duo`` claim.

Hand-written because no maintained library implements a DAC workflow
(REMS, which the GDI starter kit uses, is a separate Clojure service); the
JWT and JWK work is joserfc's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import cachetools
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from server import duo
from server.auth import Caller, check_token, grant_value_of
from server.auth.audit import Decision, append_operator, operator_label
from server.auth.roles import datasets_with_role, token_subject
from server.auth.tables import AccessApplication, AccessEvent, AccessGrant, AccessTerms
from server.catalogue import metadata
from server.db.tables import Dataset, utcnow
from server.errors import Conflict, InvalidAuthentication, InvalidInput, NotFound, PermissionDenied

VISA_TYP = "vnd.ga4gh.visa+jwt"
STATES = ("submitted", "approved", "rejected", "returned")
DECISIONS = {"approve": "approved", "reject": "rejected", "return": "returned"}
MAX_TEXT = 4000
PURPOSES = ("DUO:0000042", "DUO:0000006", "DUO:0000007", "DUO:0000011")


# ------------------------------------------------------------------ helpers
def _now() -> dt.datetime:
    return utcnow()


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes (stored as UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else _aware(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(session, application_id: int, time, actor: str, *, action: str, state: str, comment=""):
    """Keep one step of an application (an ``AccessEvent``); ``state`` is the state after it."""
    session.add(
        AccessEvent(
            application_id=application_id,
            time=time,
            actor=actor,
            action=action,
            comment=comment,
            state=state,
        )
    )


def _text(body: dict, name: str, *, limit: int = 512, required: bool = True) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput(f"'{name}' is required (a non-empty string)")
    value = value.strip()
    if len(value) > limit or any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise InvalidInput(f"'{name}' must be at most {limit} printable characters")
    return value


def _terms(value, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InvalidInput(f"'{name}' must be a list of DUO term ids (DUO:0000007)")
    bad = [t for t in value if not duo.TERM.match(t)]
    if bad:
        raise InvalidInput(f"'{name}': not a DUO term id: {bad[0][:40]!r}")
    if len(value) > 64:
        raise InvalidInput(f"'{name}': at most 64 terms")
    return sorted(set(value))


def _authenticated(caller: Caller, what: str) -> str:
    check_token(caller)
    if not caller.authenticated or token_subject(caller) is None:
        raise InvalidAuthentication(f"{what} requires authentication (a bearer token)")
    return caller.label


def is_operator(settings, caller: Caller) -> bool:
    return caller.authenticated and caller.label in tuple(settings.access_operators or ())


# ------------------------------------------------------------------ terms
def set_terms(db, dataset_id: str, terms: list[str], text: str = "") -> dict:
    """The data-use conditions applicants of ``dataset_id`` must accept (operator)."""
    terms = _terms(list(terms), "duo")
    with db.session() as session:
        if session.get(Dataset, dataset_id) is None:
            raise NotFound(f"no dataset {dataset_id!r}")
        metadata.set_data_use(session, dataset_id, terms)
        row = session.get(AccessTerms, dataset_id)
        if row is None:
            session.add(AccessTerms(dataset_id=dataset_id, text=text, updated=_now()))
        else:
            row.text, row.updated = text, _now()
    append_operator(
        db, api="access", action="terms.set", dataset_id=dataset_id, query={"duo": terms}
    )
    return {"dataset": dataset_id, "duo": terms, "text": text}


def terms_of(session, dataset_id: str) -> tuple[list[str], str]:
    """The DUO terms applicants accept (the ``data_use`` of the dataset's
    catalogue metadata, the one place they are kept) and the terms in words."""
    row = session.get(AccessTerms, dataset_id)
    return metadata.data_use(session, dataset_id), (row.text if row is not None else "")


def datasets_open_for_application(db) -> list[dict]:
    """Controlled datasets with their data-use conditions (what applicants see)."""
    with db.session() as session:
        rows = session.scalars(
            sa.select(Dataset).where(Dataset.access == "controlled").order_by(Dataset.id)
        )
        out = []
        for d in rows:
            duo, text = terms_of(session, d.id)
            out.append({"id": d.id, "name": d.name or d.id, "duo": duo, "terms": text})
        return out


# ------------------------------------------------------------------ applications
def _application_json(session, app: AccessApplication, *, events: bool = True) -> dict:
    out = {
        "id": app.id,
        "dataset": app.dataset_id,
        "applicant": app.caller,
        "title": app.title,
        "purpose": list(app.purpose or []),
        "institution": app.institution,
        "accepted_terms": list(app.accepted_terms or []),
        "state": app.state,
        "created": _iso(app.created),
        "updated": _iso(app.updated),
    }
    if events:
        rows = session.scalars(
            sa.select(AccessEvent)
            .where(AccessEvent.application_id == app.id)
            .order_by(AccessEvent.id)
        )
        out["history"] = [
            {
                "time": _iso(e.time),
                "actor": e.actor,
                "action": e.action,
                "state": e.state,
                "comment": e.comment,
            }
            for e in rows
        ]
        grant = session.scalar(sa.select(AccessGrant).where(AccessGrant.application_id == app.id))
        if grant is not None:
            out["grant"] = _grant_json(grant)
    return out


def _fields(session, body, dataset_id: str) -> dict:
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    required, _ = terms_of(session, dataset_id)
    accepted = _terms(body.get("accepted_terms", []), "accepted_terms")
    missing = [t for t in required if t not in accepted]
    if missing:
        raise InvalidInput(
            "the dataset's data-use conditions must be accepted: missing " + ", ".join(missing)
        )
    return {
        "title": _text(body, "title"),
        "purpose": _terms(body.get("purpose", []), "purpose"),
        "institution": _text(body, "institution"),
        "accepted_terms": accepted,
    }


def apply(db, settings, caller: Caller, body) -> dict:
    """Submit an application for a controlled dataset; returns it (state ``submitted``)."""
    dataset_id = body.get("dataset") if isinstance(body, dict) else None
    named = dataset_id[:128] if isinstance(dataset_id, str) else ""
    with Decision(db, caller, "access", "application.submit", dataset_id=named):
        label = _authenticated(caller, "applying for access")
        if not isinstance(dataset_id, str) or not dataset_id:
            raise InvalidInput("'dataset' is required")
        with db.session() as session:
            dataset = session.get(Dataset, dataset_id)
            if dataset is None:
                raise NotFound(f"no dataset {dataset_id!r}")
            if dataset.access != "controlled":
                raise InvalidInput(
                    f"dataset {dataset_id!r} is not controlled: nothing to apply for"
                )
            fields = _fields(session, body, dataset_id)
            pending = session.scalar(
                sa.select(AccessApplication.id).where(
                    AccessApplication.caller == label,
                    AccessApplication.dataset_id == dataset_id,
                    AccessApplication.state.in_(("submitted", "returned")),
                )
            )
            if pending is not None:
                raise Conflict(f"application {pending} for this dataset is still open")
            now = _now()
            app = AccessApplication(
                dataset_id=dataset_id,
                subject=token_subject(caller),
                issuer=caller.issuer,
                caller=label,
                state="submitted",
                created=now,
                updated=now,
                **fields,
            )
            session.add(app)
            session.flush()
            _event(session, app.id, now, label, action="submit", state="submitted")
            session.flush()
            result = _application_json(session, app)
        return result


def update(db, settings, caller: Caller, application_id: int, body) -> dict:
    """The applicant changes a returned application and submits it again."""
    with Decision(db, caller, "access", "application.resubmit", object_id=str(application_id)):
        label = _authenticated(caller, "changing an application")
        with db.session() as session:
            app = session.get(AccessApplication, application_id)
            if app is None or app.caller != label:
                raise NotFound(f"no application {application_id}")
            if app.state != "returned":
                raise Conflict(f"application {application_id} is {app.state}, not returned")
            for name, value in _fields(session, body, app.dataset_id).items():
                setattr(app, name, value)
            app.state, app.updated = "submitted", _now()
            _event(session, app.id, app.updated, label, action="resubmit", state="submitted")
            session.flush()
            return _application_json(session, app)


def _visible(db, settings, caller: Caller):
    """(own label, DAC datasets, operator?) of an authenticated caller."""
    label = _authenticated(caller, "data access management")
    return label, datasets_with_role(db, caller, "dac"), is_operator(settings, caller)


def list_applications(
    db, settings, caller: Caller, *, dataset: str | None = None, state: str | None = None
) -> dict:
    """The caller's own applications and those of the datasets it is DAC of."""
    label, dac, _ = _visible(db, settings, caller)
    if state is not None and state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}")
    with db.session() as session:
        query = sa.select(AccessApplication).where(
            sa.or_(AccessApplication.caller == label, AccessApplication.dataset_id.in_(dac))
        )
        if dataset:
            query = query.where(AccessApplication.dataset_id == dataset)
        if state:
            query = query.where(AccessApplication.state == state)
        rows = session.scalars(query.order_by(AccessApplication.id.desc()).limit(1000))
        return {"applications": [_application_json(session, a, events=False) for a in rows]}


def get_application(db, settings, caller: Caller, application_id: int) -> dict:
    label, dac, _ = _visible(db, settings, caller)
    with db.session() as session:
        app = session.get(AccessApplication, application_id)
        if app is None or (app.caller != label and app.dataset_id not in dac):
            raise NotFound(f"no application {application_id}")  # others learn nothing
        return _application_json(session, app)


def decide(db, settings, caller: Caller, application_id: int, body) -> dict:
    """A DAC member of the application's dataset approves, rejects or returns it."""
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    decision = body.get("decision")
    with Decision(
        db,
        caller,
        "access",
        f"application.{decision if decision in DECISIONS else 'decide'}",
        object_id=str(application_id),
    ) as audit:
        label = _authenticated(caller, "deciding an application")
        if decision not in DECISIONS:
            raise InvalidInput("'decision' must be one of approve, reject, return")
        comment = _text(body, "comment", limit=MAX_TEXT, required=decision != "approve")
        days = body.get("expires_in_days")
        if decision == "approve":
            if not isinstance(days, int) or isinstance(days, bool) or days < 1:
                raise InvalidInput("'expires_in_days' (a positive integer) is required to approve")
            if days > settings.access_max_days:
                raise InvalidInput(f"'expires_in_days' may be at most {settings.access_max_days}")
        dac = datasets_with_role(db, caller, "dac")
        with db.session() as session:
            app = session.get(AccessApplication, application_id, with_for_update=True)
            own = app is not None and app.caller == label
            if app is None or (app.dataset_id not in dac and not own):
                raise NotFound(f"no application {application_id}")
            audit.dataset_id = app.dataset_id
            audit.query = {"decision": decision}
            if own or app.subject == token_subject(caller):
                raise PermissionDenied("nobody may decide their own application")
            if app.dataset_id not in dac:
                raise NotFound(f"no application {application_id}")
            if app.state != "submitted":
                raise Conflict(f"application {application_id} is {app.state}, not submitted")
            now = _now()
            app.state, app.updated = DECISIONS[decision], now
            _event(session, app.id, now, label, action=decision, state=app.state, comment=comment)
            if decision == "approve":
                expires = now + dt.timedelta(days=days)
                session.add(
                    AccessGrant(
                        application_id=app.id,
                        dataset_id=app.dataset_id,
                        subject=app.subject,
                        issuer=app.issuer,
                        caller=app.caller,
                        duo=list(app.accepted_terms or []),
                        granted=now,
                        granted_by=label,
                        expires=expires,
                        revoked_by="",
                    )
                )
                audit.query["expires"] = _iso(expires)
            session.flush()
            result = _application_json(session, app)
    forget(result["applicant"])
    return result


# ------------------------------------------------------------------ grants
def _grant_json(g: AccessGrant) -> dict:
    now = _now()
    if g.revoked is not None:
        state = "revoked"
    elif _aware(g.expires) <= now:
        state = "expired"
    else:
        state = "active"
    return {
        "id": g.id,
        "application": g.application_id,
        "dataset": g.dataset_id,
        "subject": g.caller,
        "duo": list(g.duo or []),
        "granted": _iso(g.granted),
        "granted_by": g.granted_by,
        "expires": _iso(g.expires),
        "revoked": _iso(g.revoked),
        "revoked_by": g.revoked_by or None,
        "state": state,
    }


def list_grants(db, settings, caller: Caller, *, dataset: str | None = None) -> dict:
    """Grants the caller may see: of its DAC datasets, its own, or all (operator)."""
    with Decision(
        db, caller, "access", "grants.list", dataset_id=dataset or "", record_grant=False
    ):
        label, dac, operator = _visible(db, settings, caller)
        with db.session() as session:
            query = sa.select(AccessGrant)
            if not operator:
                query = query.where(
                    sa.or_(AccessGrant.caller == label, AccessGrant.dataset_id.in_(dac))
                )
            if dataset:
                if not operator and dataset not in dac:
                    raise PermissionDenied(f"caller is not on the DAC of dataset {dataset!r}")
                query = query.where(AccessGrant.dataset_id == dataset)
            rows = session.scalars(query.order_by(AccessGrant.id.desc()).limit(1000))
            return {"grants": [_grant_json(g) for g in rows]}


def _end_grant(session, grant: AccessGrant, actor: str, comment: str) -> dict:
    """Revoke ``grant`` now, by ``actor``, with the event that records it; the grant's JSON."""
    if grant.revoked is not None:
        raise Conflict(f"grant {grant.id} was already revoked")
    grant.revoked, grant.revoked_by = _now(), actor
    _event(
        session,
        grant.application_id,
        grant.revoked,
        actor,
        action="revoke",
        state="approved",
        comment=comment,
    )
    session.flush()
    return _grant_json(grant)


def revoke(db, settings, caller: Caller, grant_id: int, body=None) -> dict:
    """End a grant now (a DAC member of its dataset, or an operator)."""
    body = body if isinstance(body, dict) else {}
    with Decision(db, caller, "access", "grant.revoke", object_id=str(grant_id)) as audit:
        label, dac, operator = _visible(db, settings, caller)
        comment = _text(body, "comment", limit=MAX_TEXT, required=False)
        with db.session() as session:
            grant = session.get(AccessGrant, grant_id, with_for_update=True)
            if grant is None or not (operator or grant.dataset_id in dac):
                raise NotFound(f"no grant {grant_id}")
            audit.dataset_id = grant.dataset_id
            result = _end_grant(session, grant, label, comment)
    forget(result["subject"])
    return result


def revoke_as_operator(db, grant_id: int, comment: str = "") -> dict:
    """``genomeport access revoke``: the operator's revocation on the command line."""
    with db.session() as session:
        grant = session.get(AccessGrant, grant_id)
        if grant is None:
            raise NotFound(f"no grant {grant_id}")
        result = _end_grant(session, grant, operator_label(), comment)
    append_operator(
        db,
        api="access",
        action="grant.revoke",
        dataset_id=result["dataset"],
        object_id=str(grant_id),
    )
    forget(result["subject"])
    return result


def all_grants(db) -> list[dict]:
    with db.session() as session:
        return [
            _grant_json(g) for g in session.scalars(sa.select(AccessGrant).order_by(AccessGrant.id))
        ]


# ------------------------------------------------------- in every decision
_CACHES: dict[int, cachetools.TTLCache] = {}
_CACHE_LOCK = threading.Lock()


def _cache(settings) -> cachetools.TTLCache | None:
    ttl = int(settings.access_cache_seconds)
    if ttl <= 0:
        return None
    with _CACHE_LOCK:
        cache = _CACHES.get(ttl)
        if cache is None:
            cache = _CACHES[ttl] = cachetools.TTLCache(maxsize=8192, ttl=ttl)
        return cache


def forget(label: str) -> None:
    """Drop this process's cached lookups of ``label`` (after a change made here;
    other processes see it when their entries expire)."""
    with _CACHE_LOCK:
        for cache in _CACHES.values():
            for key in [k for k in cache if k[1] == label]:
                cache.pop(key, None)


def _lookup(settings, db, key: tuple, compute):
    cache = _cache(settings)
    if cache is not None:
        with _CACHE_LOCK:
            if key in cache:
                return cache[key]
    value = compute()
    if cache is not None:
        with _CACHE_LOCK:
            cache[key] = value
    return value


def _active(session, label: str, now: dt.datetime) -> list[tuple[AccessGrant, Dataset]]:
    """The caller's active grants with their datasets. The expiry is compared
    here, not in SQL: SQLite keeps datetimes as text, without their zone."""
    rows = session.execute(
        sa.select(AccessGrant, Dataset)
        .join(Dataset, Dataset.id == AccessGrant.dataset_id)
        .where(AccessGrant.caller == label, AccessGrant.revoked.is_(None))
        .order_by(AccessGrant.id)
    ).all()
    return [(g, d) for g, d in rows if _aware(g.expires) > now]


def active_grant_values(settings, db, label: str) -> frozenset[str]:
    """The grant values of the datasets ``label`` holds an active grant for."""

    def compute() -> frozenset[str]:
        now = _now()
        with db.session() as session:
            rows = _active(session, label, now)
            return frozenset(grant_value_of(d) for _, d in rows)

    return _lookup(settings, db, ("values", label, db.url), compute)


def with_grants(settings, db, caller: Caller) -> Caller:
    """``caller`` with the grants this node's DACs gave it added to ``controlled``."""
    if not caller.authenticated or db is None:
        return caller
    values = active_grant_values(settings, db, caller.label)
    if not values - caller.controlled:
        return caller
    return replace(caller, controlled=caller.controlled | values)


def grant_check(settings, db, label: str, dataset_id: str) -> None:
    """The data plane's re-check of a signed URL: refused when every grant the
    caller held on the dataset was revoked or has expired. A URL that no grant
    of this node stands behind (public data, a visa from elsewhere) passes."""
    if db is None or not dataset_id or not label or label == "anonymous":
        return

    def compute() -> tuple[bool, bool]:
        now = _now()
        with db.session() as session:
            rows = session.execute(
                sa.select(AccessGrant.revoked, AccessGrant.expires).where(
                    AccessGrant.caller == label, AccessGrant.dataset_id == dataset_id
                )
            ).all()
        active = any(r.revoked is None and _aware(r.expires) > now for r in rows)
        return bool(rows), active

    had, active = _lookup(settings, db, ("check", label, db.url, dataset_id), compute)
    if had and not active:
        raise PermissionDenied("the access grant behind this URL was revoked or has expired")


# ------------------------------------------------------------------ visas
_KEYS: dict[str, RSAKey] = {}
_KEY_LOCK = threading.Lock()


def visa_key(settings) -> RSAKey:
    """The node's visa signing key (``<var_dir>/access/visa-key.json``, made once)."""
    path = Path(settings.var_dir).resolve() / "access" / "visa-key.json"
    with _KEY_LOCK:
        key = _KEYS.get(str(path))
        if key is not None:
            return key
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            generated = RSAKey.generate_key(2048, auto_kid=True)
            tmp = path.with_name(f".{uuid.uuid4().hex}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(generated.as_dict(private=True), fh)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # first writer wins, across workers
            os.unlink(tmp)
        key = RSAKey.import_key(json.loads(path.read_text()))
        _KEYS[str(path)] = key
        return key


def jwks(settings) -> dict:
    """The public visa key, as published at ``/access/jwks.json``."""
    data = visa_key(settings).as_dict(private=False)
    data.update(use="sig", alg="RS256")
    return {"keys": [data]}


def jwks_url(settings) -> str:
    return settings.public_url.rstrip("/") + "/access/jwks.json"


def visas(db, settings, caller: Caller) -> dict:
    """The caller's active grants as signed ``ControlledAccessGrants`` visas."""
    with Decision(db, caller, "access", "visas.issue") as audit:
        label = _authenticated(caller, "visas")
        now = _now()
        with db.session() as session:
            rows = _active(session, label, now)
        key = visa_key(settings)
        header = {"alg": "RS256", "typ": VISA_TYP, "kid": key.kid, "jku": jwks_url(settings)}
        issued = int(time.time())
        out = []
        for grant, dataset in rows:
            exp = min(issued + settings.access_visa_ttl, int(_aware(grant.expires).timestamp()))
            claims = {
                "iss": settings.public_url.rstrip("/"),
                "sub": grant.subject,
                "iat": issued,
                "exp": exp,
                "jti": uuid.uuid4().hex,
                "ga4gh_visa_v1": {
                    "type": "ControlledAccessGrants",
                    "asserted": int(_aware(grant.granted).timestamp()),
                    "value": grant_value_of(dataset),
                    "source": settings.public_url.rstrip("/") + "/access",
                    "by": "dac",
                },
                "duo": list(grant.duo or []),
            }
            out.append(jwt.encode(header, claims, key, algorithms=["RS256"]))
        audit.query = {"grants": [g.id for g, _ in rows]}
        return {"ga4gh_passport_v1": out}


def public_keys(settings) -> KeySet:
    return KeySet.import_key_set(jwks(settings))
