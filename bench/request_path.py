"""Where a request's time goes between the socket and the service, in process.

Builds a small Beacon store and a registered BAM, creates the node with
``server.web.app.create_app`` and calls its ASGI app directly (no server, no
socket), so what is measured is the node's own request path: the ops
middleware, CORS, Connexion's middlewares, the a2wsgi bridge, Flask and the
handler. Beside it, the same Beacon allele query through
``server.beacon.service.answer`` alone (the service path), so
``app - service`` is the web layer's cost.

    python bench/request_path.py [--db sqlite|postgresql] [--requests 2000]
                                 [--profile beacon|htsget] [--top 40]

``--profile`` runs the requests under cProfile and prints the cumulative time
of the request path's layers (each Connexion middleware, a2wsgi, Flask, the
handler, JSON encoding) and the top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.beacon import build_store, database_url  # noqa: E402


def asgi_get(app, path: str, query: str = "", headers=()) -> tuple[int, bytes]:
    """One GET through the ASGI ``app``: (status, body)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1:8080"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    out = {"status": 0, "body": []}
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"].append(message.get("body", b""))

    async def run():
        await app(scope, receive, send)

    LOOP.run_until_complete(run())
    return out["status"], b"".join(out["body"])


LOOP = asyncio.new_event_loop()


def timed(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1000)
    return out


# layer name: "file suffix:function" of the frame that stands for it
LAYERS = {
    "ops middleware (all inside it)": "server/web/ops.py:__call__",
    "CORS": "starlette/middleware/cors.py:__call__",
    "data plane mount": "server/web/app.py:__call__",
    "Connexion ServerErrorMiddleware": "starlette/middleware/errors.py:__call__",
    "Connexion ExceptionMiddleware": "connexion/middleware/exceptions.py:__call__",
    "Connexion SwaggerUIMiddleware": "connexion/middleware/swagger_ui.py:__call__",
    "Connexion RoutingMiddleware": "connexion/middleware/routing.py:__call__",
    "Connexion SecurityMiddleware": "connexion/middleware/security.py:__call__",
    "Connexion RequestValidation": "connexion/middleware/request_validation.py:__call__",
    "Connexion ResponseValidation": "connexion/middleware/response_validation.py:__call__",
    "Connexion LifespanMiddleware": "connexion/middleware/lifespan.py:__call__",
    "Connexion ContextMiddleware": "connexion/middleware/context.py:__call__",
    "a2wsgi bridge": "a2wsgi/wsgi.py:__call__",
    "Flask wsgi_app": "flask/app.py:wsgi_app",
    "Flask dispatch_request": "flask/app.py:dispatch_request",
    "Flask finalize_request": "flask/app.py:finalize_request",
    "Connexion FlaskOperation": "connexion/apps/flask.py:__call__",
    "Connexion parameter decorator": "connexion/decorators/parameter.py:wrapper",
    "Connexion response decorator": "connexion/decorators/response.py:wrapper",
    "beacon service.answer": "server/beacon/service.py:answer",
    "htsget service": "server/htsget/service.py:ticket",
    "JSON dumps": "json/__init__.py:dumps",
    "caller_from_request": "server/auth/tokens.py:caller_from_request",
}


def layer_report(prof: cProfile.Profile, n: int) -> None:
    stats = pstats.Stats(prof)
    rows = {}
    for (file, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        for name, where in LAYERS.items():
            suffix, fname = where.split(":")
            if file.endswith(suffix) and func == fname:
                rows[name] = max(rows.get(name, 0.0), ct)
    print(f"  cumulative ms per request under cProfile ({n} requests; profiler inflates all):")
    for name in LAYERS:
        if name in rows:
            print(f"    {name:38s} {rows[name] / n * 1000:8.3f}")


def _uncached_validators():
    """Connexion's own per-request schema validators (a deep copy and a new
    JSON-schema validator per parameter and request), with the int64 guard."""
    from connexion.validators import ParameterValidator

    from server.web import validation

    class Uncached(validation.Int64ParameterValidator):
        @staticmethod
        def check_schema(parameter_type, value, param, param_name=None):
            return ParameterValidator.validate_parameter(parameter_type, value, param, param_name)

    return {**validation.VALIDATOR_MAP, "parameter": Uncached}


# trim -> (module attribute of server.web.app or validation, value that undoes it)
def _undo(name: str):
    import flask
    from connexion.jsonifier import Jsonifier
    from connexion.middleware import ConnexionMiddleware

    if name == "validator cache":
        return "server.web.validation", "VALIDATOR_MAP", _uncached_validators()
    if name == "parser schema map":
        from connexion.uri_parsing import OpenAPIURIParser

        return "server.web.validation", "URI_PARSER", OpenAPIURIParser
    if name == "compact JSON":
        return "server.web.app", "JSONIFIER", Jsonifier(flask.json, indent=2)
    if name == "trimmed middlewares":
        return "server.web.app", "MIDDLEWARES", tuple(ConnexionMiddleware.default_middlewares)
    raise ValueError(name)


TRIMS = ("validator cache", "parser schema map", "compact JSON", "trimmed middlewares")


def ablate(settings, request, n: int, rounds: int = 10) -> None:
    """p50 and process CPU of ``request`` on one app with every trim and one app
    with each trim undone alone, batches interleaved over the apps."""
    import importlib

    from server.web.app import create_app

    apps = {"all trims": create_app(settings, migrate=False)}
    for trim in TRIMS:
        module_name, attr, value = _undo(trim)
        module = importlib.import_module(module_name)
        kept = getattr(module, attr)
        setattr(module, attr, value)
        try:
            apps[f"without {trim}"] = create_app(settings, migrate=False)
        finally:
            setattr(module, attr, kept)
    wall = {name: [] for name in apps}
    cpu = dict.fromkeys(apps, 0.0)
    for app in apps.values():
        for i in range(50):
            request(app, i)
    batch = max(1, n // rounds)
    for _ in range(rounds):
        for name, app in apps.items():
            t = time.process_time()
            wall[name] += timed(lambda i, app=app: request(app, i), batch)
            cpu[name] += time.process_time() - t
    per = batch * rounds
    base_wall = statistics.median(wall["all trims"])
    base_cpu = cpu["all trims"] / per * 1000
    print(f"allele query, {per} requests per app, {rounds} interleaved rounds (in process)")
    print(f"  {'app':32s} {'p50 ms':>7s} {'CPU ms':>7s}  gain = 1 - all / without (p50, CPU)")
    for name in apps:
        p50, c = statistics.median(wall[name]), cpu[name] / per * 1000
        gain = (
            "" if name == "all trims" else f"  {1 - base_wall / p50:6.1%} {1 - base_cpu / c:6.1%}"
        )
        print(f"  {name:32s} {p50:7.3f} {c:7.3f}{gain}")
    for app in apps.values():
        app.app.extensions["genomeport"].db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--variants", type=int, default=20000)
    ap.add_argument("--profile", choices=("beacon", "htsget"), default=None)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument(
        "--ablate",
        action="store_true",
        help="one app with every public-API trim, one with each undone alone, interleaved",
    )
    args = ap.parse_args()

    from server.beacon import request as breq
    from server.beacon import service
    from server.settings import Settings
    from server.web.app import create_app

    tmp = Path(tempfile.mkdtemp(prefix="gp-reqpath-"))
    url, drop = database_url(args.db, tmp)
    cx = None
    try:
        settings = Settings(
            var_dir=str(tmp / "var"),
            database_url=url,
            signing_key="bench-request-path",
            public_url="http://127.0.0.1:8080",
            beacon_rate_per_minute=10**9,
            beacon_rate_per_day=10**9,
            log_level="WARNING",
        )
        cx = create_app(settings)
        db = cx.app.extensions["genomeport"].db
        rng = random.Random(7)
        samples = build_store(db, args.variants, 50, rng, access="public")

        def allele_query(i):
            chrom, start, alt = samples[i % len(samples)]
            return {
                "referenceName": chrom,
                "start": str(start),
                "alternateBases": alt,
                "requestedGranularity": "count",
            }

        from urllib.parse import urlencode

        def app_allele(i):
            status, body = asgi_get(cx, "/beacon/v2/g_variants", urlencode(allele_query(i)))
            if status != 200:
                raise SystemExit(f"{status} {body[:300]!r}")

        def app_info(i):
            status, body = asgi_get(cx, "/beacon/v2/info")
            if status != 200:
                raise SystemExit(f"{status} {body[:300]!r}")

        def app_service_info(i):
            status, body = asgi_get(cx, "/service-info")
            if status != 200:
                raise SystemExit(f"{status} {body[:300]!r}")

        from server.auth import Caller

        anonymous = Caller()

        def service_allele(i):
            req = breq.from_get(
                "g_variants",
                allele_query(i),
                default_limit=settings.beacon_default_limit,
                max_limit=settings.beacon_max_limit,
                default_granularity=settings.beacon_default_granularity,
            )
            service.answer(db, settings, anonymous, req, method="GET", budget_key="anon@x")

        shapes = {
            "allele query, app": app_allele,
            "allele query, service alone": service_allele,
            "/beacon/v2/info, app": app_info,
            "/service-info, app": app_service_info,
        }
        for fn in shapes.values():
            timed(fn, 50)
        if args.ablate:
            ablate(
                settings,
                lambda app, i: asgi_get(app, "/beacon/v2/g_variants", urlencode(allele_query(i))),
                args.requests,
            )
            return
        if args.profile:
            fn = app_allele if args.profile == "beacon" else app_service_info
            # Flask runs in a2wsgi's worker thread: profiled there on its own
            flask_prof = cProfile.Profile()
            dispatch = cx.app.full_dispatch_request

            def profiled_dispatch():
                flask_prof.enable()
                try:
                    return dispatch()
                finally:
                    flask_prof.disable()

            cx.app.full_dispatch_request = profiled_dispatch
            prof = cProfile.Profile()
            prof.enable()
            timed(fn, args.requests)
            prof.disable()
            layer_report(prof, args.requests)
            print("  in the Flask thread:")
            layer_report(flask_prof, args.requests)
            pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)
            pstats.Stats(flask_prof).sort_stats("cumulative").print_stats(args.top)
            return
        results = {name: [] for name in shapes}
        cpu = dict.fromkeys(shapes, 0.0)
        rounds = 5
        for _ in range(rounds):  # interleaved, so all shapes share the machine's load
            for name, fn in shapes.items():
                t = time.process_time()
                results[name] += timed(fn, args.requests // rounds)
                cpu[name] += time.process_time() - t
        per = rounds * (args.requests // rounds)
        print(f"{args.db}: p50 ms and process CPU ms per request, {per} requests each (in process)")
        for name, values in results.items():
            print(f"  {name:32s} {statistics.median(values):7.3f} {cpu[name] / per * 1000:7.3f}")
        name = "allele query, web layer"
        web = statistics.median(results["allele query, app"]) - statistics.median(
            results["allele query, service alone"]
        )
        web_cpu = (cpu["allele query, app"] - cpu["allele query, service alone"]) / per * 1000
        print(f"  {name:32s} {web:7.3f} {web_cpu:7.3f}")
    finally:
        if cx is not None:
            cx.app.extensions["genomeport"].db.dispose()
        drop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
