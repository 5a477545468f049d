"""One Beacon query budget per caller and dataset, for the whole node.

The counts live in the database (``beacon_budgets``: one row per caller and
dataset, with the queries of the current UTC minute and UTC day), so every
gunicorn worker and every connection draws on the same budget. A query costs
one statement on the hot path: a multi-row upsert that bumps, for every
dataset the query is about, the minute and day counters (restarting a counter
whose window has passed) and returns the new values.

Limits are per tier of the caller for that dataset: ``beacon_rate_per_minute``
and ``beacon_rate_per_day`` apply to every tier, and ``beacon_budgets``
(``{"boolean": {"minute": 30, "day": 1000}, ...}``) overrides them per tier; 0
is unlimited. Windows are fixed UTC minutes and days (a refusal's
``Retry-After`` is the time left in the window that ran out). A refused query
still counts, so hammering a spent budget never earns more queries. Answers do
not depend on the budget: the same query always gets the same answer or a 429.

Written by hand: no maintained library keeps a rate-limit counter in the
node's own SQL database (the limiters on PyPI keep theirs in process memory,
Redis or memcached), and this is one statement.
"""

from __future__ import annotations

import functools
import math
import random
import time

from server.db.prepared import fetch_all
from server.errors import TooManyRequests
from server.settings import Settings

WINDOWS = {"minute": 60, "day": 86400}


class BudgetExhausted(TooManyRequests):
    """429 with ``Retry-After``; ``detail`` goes to the audit trail: the query
    is recorded as ``refused`` (``server.auth.audit.Decision``)."""

    def __init__(self, message: str, retry_after: int, detail: dict):
        super().__init__(message)
        self.retry_after = max(math.ceil(retry_after), 1)
        self.headers = {"Retry-After": str(self.retry_after)}
        self.detail = detail
        self.audit = {
            "outcome": "refused",
            "dataset_id": detail["dataset"],
            "query": {"budget": detail},
        }


def limits(settings: Settings, tier: str) -> dict[str, int]:
    """``{"minute": n, "day": n}`` for a caller at ``tier`` (0: unlimited)."""
    out = {"minute": settings.beacon_rate_per_minute, "day": settings.beacon_rate_per_day}
    override = (settings.beacon_budgets or {}).get(tier) or {}
    for window in WINDOWS:
        if window in override:
            out[window] = int(override[window])
    return out


@functools.lru_cache(maxsize=64)
def _upsert(n: int, dialect: str) -> str:
    values = ", ".join(f"(:caller, :d{i}, :minute, 1, :day, 1)" for i in range(n))
    if dialect == "postgresql":
        # one self-committing statement that does not wait for the WAL flush
        # (``synchronous_commit`` off for its own transaction, as the audit row):
        # a crash of the database server may forget the last fraction of a second
        rows = (
            f"SELECT * FROM (VALUES {values}) AS v "
            "WHERE set_config('synchronous_commit', 'off', true) = 'off'"
        )
    else:
        rows = f"VALUES {values}"
    return (
        "INSERT INTO beacon_budgets (caller, dataset_id, minute, minute_n, day, day_n) "
        f"{rows} ON CONFLICT (caller, dataset_id) DO UPDATE SET "
        "minute_n = CASE WHEN beacon_budgets.minute = excluded.minute "
        "THEN beacon_budgets.minute_n + 1 ELSE 1 END, minute = excluded.minute, "
        "day_n = CASE WHEN beacon_budgets.day = excluded.day "
        "THEN beacon_budgets.day_n + 1 ELSE 1 END, day = excluded.day "
        "RETURNING dataset_id, minute_n, day_n"
    )


def spend(
    session, settings: Settings, caller_key: str, tiers: dict[str, str], now: float | None = None
) -> None:
    """Charge one query to ``caller_key`` for each dataset in ``tiers``
    (``{dataset id: tier}``; none: the node-wide row ``""`` at the boolean tier).

    Runs on the session's connection; on SQLite the write is committed at once,
    so the database lock is not held while the query runs (on PostgreSQL the
    Beacon session is in autocommit mode). Raises ``BudgetExhausted``."""
    tiers = tiers or {"": "boolean"}
    wanted = {d: limits(settings, t) for d, t in tiers.items()}
    if not any(v for lim in wanted.values() for v in lim.values()):
        return  # unlimited: nothing to count
    now = time.time() if now is None else now
    minute, day = int(now // 60), int(now // 86400)
    ids = sorted(tiers)
    params = {
        "caller": caller_key[:256],
        "minute": minute,
        "day": day,
        **{f"d{i}": d for i, d in enumerate(ids)},
    }
    dialect = session.get_bind().dialect.name
    rows = fetch_all(session, _upsert(len(ids), dialect), params)
    if dialect == "sqlite":
        session.commit()
    if random.random() < 0.001:  # now and then, forget callers idle since yesterday
        fetch_all(
            session, "DELETE FROM beacon_budgets WHERE day < :day RETURNING day", {"day": day - 1}
        )
        if dialect == "sqlite":
            session.commit()
    refused = []
    for dataset_id, minute_n, day_n in rows:
        lim = wanted[dataset_id]
        for window, used in (("minute", minute_n), ("day", day_n)):
            if lim[window] and used > lim[window]:
                size = WINDOWS[window]
                refused.append((size - now % size, window, dataset_id, lim[window]))
    if refused:
        retry, window, dataset_id, limit = max(refused)
        where = f" for dataset {dataset_id}" if dataset_id else ""
        raise BudgetExhausted(
            f"query budget exhausted{where}: at most {limit} Beacon queries per {window} "
            f"(tier {tiers[dataset_id]}); retry in {max(math.ceil(retry), 1)} s",
            retry,
            {"window": window, "dataset": dataset_id, "limit": limit, "tier": tiers[dataset_id]},
        )
