"""What authorisation costs per request: DRS object lookups, controlled vs public.

Runs one real node (gunicorn + uvicorn worker, SQLite) with the same file
registered in a public and in a controlled dataset, then alternates over one
keep-alive HTTP connection, in one run:

* public  : GET /ga4gh/drs/v1/objects/<public id>      (no token)
* token   : GET /ga4gh/drs/v1/objects/<controlled id>  (Bearer passport, warm caches)

and reports the added time per request, and the cost of token validation
alone (cold = first sight of a token: signature checks of passport and visas;
warm = cached per token hash). Only ratios and differences measured side by
side in this one run are meaningful.

    python bench/drs.py [--requests 400]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TESTDATA = REPO.parent / "shared" / "testdata"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per variant")
    args = parser.parse_args()

    import logging
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)
    logging.disable(logging.WARNING)
    import httpx

    from server.auth.tokens import caller_from_request
    from server.registry import add_dataset, add_files
    from server.settings import Settings
    from tests.unit.auth.tokenkit import make_kit

    tmp = Path(tempfile.mkdtemp(prefix="bench-drs-"))
    kit = make_kit(tmp)
    issuer = kit.issuer
    settings = kit.trusting(
        Settings(
            var_dir=str(tmp / "var"),
            signing_key=uuid.uuid4().hex,
            log_format="text",
            log_level="WARNING",
        )
    )
    from server.db import Database
    from tests.conftest import start_server, stop_server

    db = Database(settings.effective_database_url)
    db.upgrade()
    vcf = TESTDATA / "variants" / "spec-v4.3.vcf.gz"
    add_dataset(db, "pub", access="public")
    add_dataset(db, "ctl", access="controlled")
    add_files(db, [vcf], "pub", object_id="pubobj", progress=False)
    add_files(db, [vcf], "ctl", object_id="ctlobj", progress=False)

    def passport() -> str:
        return kit.passport(
            "alice", [issuer.grant_visa("alice", "ctl")] + issuer.registered_visas("alice")
        )

    token = passport()
    n = args.requests
    # token validation alone (in this process)
    cold = []
    for _ in range(min(n, 100)):
        t = passport()
        start = time.perf_counter()
        caller_from_request(settings, "Bearer " + t)
        cold.append(time.perf_counter() - start)
    caller_from_request(settings, "Bearer " + token)
    warm = []
    for _ in range(n):
        start = time.perf_counter()
        caller_from_request(settings, "Bearer " + token)
        warm.append(time.perf_counter() - start)

    # whole requests, interleaved, against a real server
    public, controlled = [], []
    server = start_server(settings, workers=1)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            hdr = {"Authorization": f"Bearer {token}"}
            for _ in range(20):  # warm up both paths (and the worker's token cache)
                assert client.get("/ga4gh/drs/v1/objects/pubobj.vcf.gz").status_code == 200
                assert (
                    client.get("/ga4gh/drs/v1/objects/ctlobj.vcf.gz", headers=hdr).status_code
                    == 200
                )
            for _ in range(n):
                start = time.perf_counter()
                client.get("/ga4gh/drs/v1/objects/pubobj.vcf.gz")
                public.append(time.perf_counter() - start)
                start = time.perf_counter()
                client.get("/ga4gh/drs/v1/objects/ctlobj.vcf.gz", headers=hdr)
                controlled.append(time.perf_counter() - start)
    finally:
        stop_server(server)

    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    print(f"requests per variant: {n}")
    print(f"token validation, cold (3 visas, RS256): median {ms(cold):8.3f} ms")
    print(
        f"token validation, warm cache           : median {ms(warm):8.3f} ms"
        f"  ({ms(cold) / ms(warm):.0f}x faster than cold)"
    )
    print(f"GET object, public, no token           : median {ms(public):8.3f} ms")
    print(f"GET object, controlled, bearer passport: median {ms(controlled):8.3f} ms")
    added = ms(controlled) - ms(public)
    print(
        f"authorisation added per request        : {added:+8.3f} ms "
        f"(ratio {ms(controlled) / ms(public):.3f}; target < 1 ms)"
    )
    db.dispose()


if __name__ == "__main__":
    main()
