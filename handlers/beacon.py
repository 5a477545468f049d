"""Beacon v2 handlers (openapi/beacon.yaml): parse, call server.beacon, return.

GET and POST of every entry endpoint build the same ``BeaconRequest``
(server.beacon.request), so both give identical answers.
"""

from __future__ import annotations

import flask

from server.beacon import request as breq
from server.beacon import service
from server.web.context import current_caller, node

# (operationId stem, entry endpoint, kind, target endpoint)
#   kind: "list" /{entry}, "one" /{entry}/{id}, "link" /{entry}/{id}/{target}
ENTRY_NAMES = {
    "g_variants": "GVariants",
    "individuals": "Individuals",
    "biosamples": "Biosamples",
    "runs": "Runs",
    "analyses": "Analyses",
    "cohorts": "Cohorts",
    "datasets": "Datasets",
}


def _operations():
    """Every entry operation: (operationId without get/post, path, entry, kind, target)."""
    ops = []
    for entry, name in ENTRY_NAMES.items():
        ops.append((name, f"/{entry}", entry, "list", None))
        ops.append((f"One{name}", f"/{entry}/{{id}}", entry, "one", None))
        for target in service.LINKS.get(entry, ()):
            ops.append(
                (f"{name}{ENTRY_NAMES[target]}", f"/{entry}/{{id}}/{target}", entry, "link", target)
            )
    return ops


def _args() -> dict:
    out = {}
    for key in flask.request.args:
        values = flask.request.args.getlist(key)
        out[key] = values[0] if len(values) == 1 else ",".join(values)
    return out


def _run(entry: str, kind: str, target: str | None, entry_id, body, method: str):
    n = node()
    caller = current_caller()
    settings = n.settings
    key = caller.label if caller.authenticated else f"anonymous@{flask.request.remote_addr}"
    kw = {
        "default_limit": settings.beacon_default_limit,
        "max_limit": settings.beacon_max_limit,
        "default_granularity": settings.beacon_default_granularity,
    }
    answer_entry = target if kind == "link" else entry
    if kind == "link":
        kw.update(source_type=breq.ENTRY_TYPES[entry], source_id=entry_id)
    elif kind == "one":
        kw["entry_id"] = entry_id
    if method == "POST":
        req = breq.from_post(answer_entry, body, **kw)
    else:
        req = breq.from_get(answer_entry, _args(), **kw)
    return service.answer(n.db, settings, caller, req, method=method, budget_key=key)


def _make(entry, kind, target, method):
    # The entry handlers read the query string or body themselves (both through
    # server.beacon.request), after Connexion has checked them against the
    # OpenAPI document. They take their path parameter alone: with no **kwargs
    # in the signature, Connexion passes nothing else, so it does not convert
    # every query parameter a second time for arguments nobody reads.
    def handler(id_=None):
        body = flask.request.get_json(silent=True) if method == "POST" else None
        return _run(entry, kind, target, id_, body, method)

    return handler


def _snake(name: str) -> str:
    import re

    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


for _stem, _path, _entry, _kind, _target in _operations():
    globals()["get_" + _snake(_stem)] = _make(_entry, _kind, _target, "GET")
    globals()["post_" + _snake(_stem)] = _make(_entry, _kind, _target, "POST")


# ---------------------------------------------------------------- framework
# operationId -> the document it answers, built from the node's settings alone
FRAMEWORK = {
    "get_beacon_root": service.info,
    "get_beacon_info": service.info,
    "get_beacon_service_info": service.service_info,
    "get_configuration": service.configuration,
    "get_beacon_map": service.beacon_map,
    "get_entry_types": service.entry_types,
}


def _framework(document):
    def handler():
        return document(node().settings)

    return handler


for _operation, _document in FRAMEWORK.items():
    globals()[_operation] = _framework(_document)


def _terms(**kw):
    n = node()
    args = _args()
    try:
        skip = int(args.get("skip") or 0)
        limit = int(args.get("limit") or 0)
    except ValueError:
        from server.errors import InvalidInput

        raise InvalidInput("skip and limit must be integers") from None
    with n.db.session() as session:
        return service.filtering_terms(session, n.settings, skip=skip, limit=limit, **kw)


def get_filtering_terms():
    return _terms()


def post_filtering_terms(body=None):
    return _terms()


def get_individuals_filtering_terms(**kwargs):
    return _terms(entry="individuals", record_id=kwargs.get("id_", kwargs.get("id")))


def get_datasets_filtering_terms(**kwargs):
    return _terms(dataset_id=kwargs.get("id_", kwargs.get("id")))


def get_cohorts_filtering_terms(**kwargs):
    return _terms(entry="individuals")


def _entry_terms(entry):
    def handler():
        return _terms(entry=entry)

    return handler


for _entry, _name in ENTRY_NAMES.items():
    # /{entry_type}/filtering_terms: the terms of that entry type's records
    globals()[f"get_{_snake(_name)}_entry_filtering_terms"] = _entry_terms(_entry)
