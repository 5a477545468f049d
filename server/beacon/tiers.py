"""What a caller below the record tier may learn: the rules of the count and
boolean tiers, in one place.

A caller's tier for a dataset comes from ``server.auth.beacon_tier``
(record / count / boolean). Below the record tier:

* **An allele is visible only if enough people carry it.** Its carriers in the
  dataset (the Roaring bitmap of carrier samples, intersected with the samples
  of the individuals matching the request's filters, when there are filters)
  must be at least ``beacon_count_threshold`` distinct people (samples of one
  individual count once; a sample with no individual record counts as one
  person). An invisible allele matches nothing: it adds nothing to a variant
  count, and its carriers add nobody to an individual count. This hides rare
  alleles, the signal of Shringarpure-Bustamante membership attacks, while
  common alleles answer ``true``.
* **Counts of individuals (and biosamples, runs, analyses)** under the
  threshold are reported as 0; others are rounded to ``beacon_count_rounding``.
* **Variant counts** count visible alleles only (each already passes the
  threshold, so the count itself is not thresholded again), rounded to
  ``beacon_count_rounding``; a non-zero count never rounds to 0.
* ``exists`` is ``numTotalResults > 0`` of the same, adjusted, count.
* **No per-person answers.** A request scoped to one individual, biosample,
  run or analysis (``/individuals/{id}``, ``/individuals/{id}/g_variants``,
  ``/biosamples/{id}/runs``, ...) is answered for that dataset as if the id
  did not exist: the same body whether it exists or not.

At every tier, only ids with a metadata record resolve: a sample that is in a
VCF but has no individual or biosample record is never addressable by name.
"""

from __future__ import annotations

from server.auth import BOOLEAN, COUNT, RECORD
from server.beacon.request import ENTRY_TYPES
from server.settings import Settings

ORDER = {BOOLEAN: 0, COUNT: 1, RECORD: 2}
NAMES = {v: k for k, v in ORDER.items()}

# stored entry types whose single-record endpoints describe one person
PERSON_SCOPED = frozenset({"individual", "biosample", "run", "analysis"})


def person_scoped(req) -> bool:
    """Whether ``req`` is about one named individual, biosample, run or analysis."""
    if req.source_type is not None and req.source_type in PERSON_SCOPED:
        return True
    return req.entry_id is not None and ENTRY_TYPES.get(req.entry_type) in PERSON_SCOPED


def min_people(settings: Settings, tier: str) -> int:
    """Carriers an allele needs to be visible at ``tier`` (0: every allele)."""
    return 0 if tier == RECORD else max(settings.beacon_count_threshold, 1)


def round_count(count: int, settings: Settings) -> int:
    """Rounded to ``beacon_count_rounding``; a non-zero count stays non-zero."""
    if count <= 0:
        return 0
    r = max(settings.beacon_count_rounding, 1)
    return max(int(round(count / r)) * r, r)


def adjust(count: int, settings: Settings, exact: bool) -> int:
    """A count of individuals (or biosamples, runs, ...) as a caller below the
    record tier sees it: 0 under the threshold, else rounded."""
    if exact:
        return count
    if count < max(settings.beacon_count_threshold, 1):
        return 0
    return round_count(count, settings)


def shown_count(entry: str, count: int, settings: Settings, tier: str) -> int:
    """The count shown for one dataset: exact at the record tier; below it,
    variant counts (already only visible alleles) rounded, others thresholded
    and rounded."""
    if tier == RECORD:
        return count
    if entry == "g_variants":
        return round_count(count, settings)
    return adjust(count, settings, exact=False)


def rule_text(settings: Settings) -> str:
    """The rule in one paragraph, for ``/configuration`` (the README says the same)."""
    t, r = max(settings.beacon_count_threshold, 1), max(settings.beacon_count_rounding, 1)
    return (
        f"Below the record tier (count and boolean granularity) an allele is visible only "
        f"if at least {t} distinct people of the dataset carry it, counting only the "
        f"individuals that match the request's filters; invisible alleles match nothing. "
        f"Variant counts count visible alleles, rounded to {r}; counts of individuals, "
        f"biosamples, runs and analyses under {t} are 0, others rounded to {r}. exists is "
        f"true exactly when the count shown is above 0. Requests about one individual, "
        f"biosample, run or analysis answer as if the id did not exist unless the caller "
        f"has the record tier for the dataset; ids without a metadata record never "
        f"resolve. Each dataset's resultSet is answered at the caller's own tier for that "
        f"dataset; responseSummary.numTotalResults is given only when every dataset asked "
        f"about allows counts."
    )
