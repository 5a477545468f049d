"""``/datasets`` and ``/cohorts``: a ``beaconCollectionsResponse``.

A collection document describes a dataset or a cohort (name, description,
access level, inclusion criteria), not a person, so the collections a query
selects are listed to every caller, whatever their tier, at the granularity
asked for. What the query asks of them (genomic parameters or filters, e.g.
"the datasets holding variant X") is evaluated only for datasets the caller
sees at the record tier; other datasets are listed only when the query has no
such conditions, and a warning says so. Counts are numbers of collections,
exact. Pagination runs over all datasets' collections together.
"""

from __future__ import annotations

import dataclasses

from server.beacon import engine

COLLECTIONS = ("datasets", "cohorts")


def respond(
    body: dict, session, req, results, tiers: dict, ctx, dataset_doc, record_docs, handovers
) -> None:
    """Set ``response.collections`` and the summary of ``body`` (in place); the
    handovers of the datasets listed (their files by htsget and DRS, for callers
    at the record tier) go in ``beaconHandovers``."""
    conditions = bool(req.genomic or req.filters)
    whole = dataclasses.replace(req, skip=0, limit=10**9)
    loads = ctx.vcf_loads([d.id for d, _, _ in results])
    genomic = engine.genomic_conditions(ctx, req, list(loads)) if req.genomic else engine.Genomic()
    listed: list[tuple] = []  # (dataset row, collection id)
    for d, _count, _m in results:
        if conditions and tiers[d.id] != "record":
            ctx.warn(
                f"dataset {d.id}: genomic parameters and filters on {req.entry_type} "
                "are evaluated only at the record tier; its collections are left out"
            )
            continue
        m = engine.evaluate(ctx, whole, d.id, loads.get(d.id, []), genomic, want_page=True)
        listed += [(d, cid) for cid in m.page]
    page = listed[req.skip * req.limit : (req.skip + 1) * req.limit]
    docs = []
    for d, cid in page:
        if req.entry_type == "datasets":
            docs.append(dataset_doc(session, d))
        else:
            docs += record_docs(session, d.id, "cohorts", [cid])
    granularity = req.granularity
    body["meta"]["returnedGranularity"] = granularity
    summary = {"exists": bool(listed)}
    if granularity != "boolean":
        summary.update(numTotalResults=len(listed), countPrecision="exact")
    body["responseSummary"] = summary
    body["response"] = {"collections": [] if req.include == "NONE" else docs}
    links = []
    if req.entry_type == "datasets" and req.include != "NONE":
        for d in dict.fromkeys(d for d, _ in page):
            if tiers[d.id] == "record":
                links += handovers(session, d.id, "datasets", [d.id])
    if links:
        body["beaconHandovers"] = links
