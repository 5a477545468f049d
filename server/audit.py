"""Queries over the append-only audit log (written by ``server.auth.audit``).

Rows record who (``Caller.label``), when, which API and action, which dataset
and object, the region or query parameters, the outcome (granted, denied,
error, or refused: a Beacon query over its caller's budget) and the HTTP
status. They never contain tokens, signed URLs or
genotypes; :func:`scrub` is applied to every ``query`` document on the way
out as a second line of defence.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import sqlalchemy as sa

from server.db import Database
from server.db.tables import AuditEvent
from server.errors import InvalidInput

OUTCOMES = ("granted", "denied", "error", "refused")
APIS = ("htsget", "beacon", "wes", "drs", "data", "access")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_SIG = re.compile(r"([?&](?:sig|signature|X-Amz-Signature|token)=)[^&\s]+", re.IGNORECASE)
SENSITIVE_KEYS = {"authorization", "token", "passports", "passport", "access_token", "sig"}


def scrub(value):
    """Redact anything shaped like a JWT or a URL signature, and sensitive keys."""
    if isinstance(value, dict):
        return {
            k: ("[redacted]" if str(k).lower() in SENSITIVE_KEYS else scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return _SIG.sub(r"\1[redacted]", _JWT.sub("[redacted-jwt]", value))
    return value


def parse_time(value: str) -> dt.datetime:
    """ISO 8601 date or datetime (naive means UTC), or a relative ``-15m``/``-2h``/``-7d``."""
    value = value.strip()
    rel = re.fullmatch(r"-?(\d+)([smhd])", value)
    if rel:
        seconds = int(rel.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[rel.group(2)]
        return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"cannot read time {value!r}: use ISO 8601 or e.g. -2h") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class AuditFilter:
    caller: str | None = None  # exact label, or a substring with a leading/trailing '*'
    dataset: str | None = None
    api: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 100


def _caller_clause(pattern: str):
    if "*" in pattern:
        like = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return AuditEvent.caller.like(like.replace("*", "%"), escape="\\")
    return AuditEvent.caller == pattern


def query(db: Database, f: AuditFilter) -> list[dict]:
    """Matching events, newest first, as plain dicts."""
    if f.outcome is not None and f.outcome not in OUTCOMES:
        raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}")
    if f.limit < 1:
        raise InvalidInput("limit must be at least 1")
    stmt = sa.select(AuditEvent)
    for clause in _clauses(f):
        stmt = stmt.where(clause)
    stmt = stmt.order_by(AuditEvent.time.desc(), AuditEvent.id.desc()).limit(f.limit)
    with db.session() as session:
        return [as_dict(row) for row in session.scalars(stmt)]


def summary(db: Database, f: AuditFilter) -> list[dict]:
    """Counts per (api, outcome, dataset) under the same filter (limit ignored)."""
    stmt = sa.select(
        AuditEvent.api, AuditEvent.outcome, AuditEvent.dataset_id, sa.func.count(AuditEvent.id)
    )
    for clause in _clauses(f):
        stmt = stmt.where(clause)
    stmt = stmt.group_by(AuditEvent.api, AuditEvent.outcome, AuditEvent.dataset_id).order_by(
        AuditEvent.api, AuditEvent.outcome, AuditEvent.dataset_id
    )
    with db.session() as session:
        return [
            {"api": a, "outcome": o, "dataset_id": d, "count": int(n)}
            for a, o, d, n in session.execute(stmt)
        ]


def _clauses(f: AuditFilter) -> list:
    out = []
    if f.caller:
        out.append(_caller_clause(f.caller))
    for column, value in (
        (AuditEvent.dataset_id, f.dataset),
        (AuditEvent.api, f.api),
        (AuditEvent.action, f.action),
        (AuditEvent.outcome, f.outcome),
    ):
        if value:
            out.append(column == value)
    if f.since:
        out.append(AuditEvent.time >= f.since)
    if f.until:
        out.append(AuditEvent.time < f.until)
    return out


def as_dict(row: AuditEvent) -> dict:
    time = row.time if row.time.tzinfo else row.time.replace(tzinfo=dt.UTC)
    return {
        "id": row.id,
        "time": time.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "caller": row.caller,
        "api": row.api,
        "action": row.action,
        "dataset_id": row.dataset_id,
        "object_id": row.object_id,
        "query": scrub(row.query or {}),
        "outcome": row.outcome,
        "status": row.status,
        "request_id": row.request_id,
    }
