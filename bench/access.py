#!/usr/bin/env python
"""Access benchmark: what adding the caller's DAC grants costs each request.

Builds the caller of one request (``server.auth.tokens.caller_from_request``,
a GA4GH Passport whose validation is cached, as on a warm node) three ways,
interleaved, on a SQLite database of its own in a temporary directory:

* without the node's database (no grant lookup: the path before grants);
* with it, the lookup cached (``GENOMEPORT_ACCESS_CACHE_SECONDS=30``);
* with it, uncached (``0``: one query per request, the worst case).

and the data plane's re-check of a URL (``server.auth.access.grant_check``),
cached and uncached. Prints medians of --repeat calls side by side (never
asserted anywhere).

Usage: .venv/bin/python bench/access.py [--repeat 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()

    from server.auth import access
    from server.auth.issuer import LocalIssuer
    from server.auth.roles import add_role
    from server.auth.tokens import caller_from_request
    from server.db import Database
    from server.registry import add_dataset
    from server.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="bench-access-"))
    issuer = LocalIssuer(tmp / "issuer")
    base = Settings(
        var_dir=str(tmp / "var"),
        signing_key="bench",
        auth_issuers=(issuer.settings_entry("jwks"),),
        auth_audience="https://bench",
    )
    cached, uncached = (base.with_overrides(access_cache_seconds=s) for s in (30, 0))
    db = Database(base.effective_database_url)
    db.upgrade()
    add_dataset(db, "ctl", access="controlled")
    add_role(db, "ctl", "dac", "dac")
    token = issuer.passport("alice", issuer.registered_visas("alice"), audience="https://bench")
    header = f"Bearer {token}"
    alice = caller_from_request(base, header)
    app = access.apply(
        db,
        base,
        alice,
        {"dataset": "ctl", "title": "t", "purpose": [], "institution": "i", "accepted_terms": []},
    )
    dac = caller_from_request(
        base, f"Bearer {issuer.passport('dac', [], audience='https://bench')}"
    )
    access.decide(db, base, dac, app["id"], {"decision": "approve", "expires_in_days": 1})

    cases = {
        "caller, no grant lookup": lambda: caller_from_request(cached, header),
        "caller + grants, cached": lambda: caller_from_request(cached, header, db=db),
        "caller + grants, uncached": lambda: caller_from_request(uncached, header, db=db),
        "URL re-check, cached": lambda: access.grant_check(cached, db, alice.label, "ctl"),
        "URL re-check, uncached": lambda: access.grant_check(uncached, db, alice.label, "ctl"),
    }
    assert "ctl" in caller_from_request(uncached, header, db=db).controlled
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()  # warm
    for _ in range(args.repeat):
        for name, fn in cases.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    first = statistics.median(times["caller, no grant lookup"])
    print(f"{'':28} {'median us':>10} {'vs no lookup':>13}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:28} {median * 1e6:10.1f} {median / first:12.2f}x")
    db.dispose()


if __name__ == "__main__":
    main()
