"""Allele frequencies by country and sex, labelled as the GDI User Portal reads them.

The portal (its dataset-discovery service) reads each ``frequencies`` entry's
``population`` as a country code (ISO 3166-1 alpha-2), optionally followed by
``_F`` or ``_M`` (``DK``, ``DK_F``), or a sex alone. The first
``frequencyInPopulations`` item of a record (``server.beacon.frequencies``)
gives the whole dataset and each sex; this module adds a second item with one
entry per country of birth (the individuals' ``geographicOrigin``) and per
country and sex, computed the same way (carrier bitmaps intersected with the
subset's samples, two alleles per sample, only where every call is diploid)
and shown through the same tier rule.

It also answers the portal's population filters: ``{"id": "sexFilter" |
"countryFilter", "operator": "=", "value": ..., "scope": "population"}``
(the form the portal has sent) keep only the frequencies of the asked country
and/or sex, as the portal itself filters them.

The country of an origin comes from an ISO 3166 id (``ISO3166-2:DK-83`` is
DK) or, for gazetteer (GAZ) terms and country names, from the table below;
an origin that maps to no country is left out of the country entries.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import cachetools
from pyroaring import BitMap

from server.beacon.engine import Context, load_key, sample_map
from server.beacon.frequencies import _entry, sampled_individuals
from server.beacon.store import allele_number

POPULATION_SCOPE = "population"
FILTER_IDS = {"sexFilter": "sex", "countryFilter": "country"}
_ISO = re.compile(r"^ISO3166(?:-[12])?:([A-Za-z]{2})\b")
# gazetteer terms and names of countries (and of the UK's constituent countries)
COUNTRIES = {
    "GAZ:00002641": "GB",  # England
    "GAZ:00002639": "GB",  # Scotland
    "GAZ:00002640": "GB",  # Wales
    "GAZ:00002638": "GB",  # Northern Ireland
    "GAZ:00002637": "GB",  # United Kingdom
    "GAZ:00004018": "IE",  # Republic of Ireland
    "GAZ:00005852": "DK",  # Denmark
    "GAZ:00002724": "FI",
    "GAZ:00002729": "SE",
    "GAZ:00002699": "NO",
    "GAZ:00002646": "DE",
    "GAZ:00003940": "FR",
    "GAZ:00002650": "IT",
    "GAZ:00003936": "ES",
    "GAZ:00002946": "NL",
    "GAZ:00002938": "BE",
    "GAZ:00002939": "PL",
    "GAZ:00004126": "PT",
    "GAZ:00002941": "CH",
    "GAZ:00002942": "AT",
    "GAZ:00002947": "LU",
    "GAZ:00002959": "EE",
}
NAMES = {
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "united kingdom": "GB",
    "republic of ireland": "IE",
    "ireland": "IE",
    "denmark": "DK",
    "finland": "FI",
    "sweden": "SE",
    "norway": "NO",
    "germany": "DE",
    "france": "FR",
    "italy": "IT",
    "spain": "ES",
    "netherlands": "NL",
    "belgium": "BE",
    "poland": "PL",
    "portugal": "PT",
    "switzerland": "CH",
    "austria": "AT",
    "luxembourg": "LU",
    "estonia": "EE",
}
_SEX = {"NCIT:C16576": "F", "NCIT:C20197": "M", "female": "F", "male": "M"}


def country_of(term) -> str | None:
    """The ISO 3166-1 alpha-2 code of a ``geographicOrigin`` term, or None."""
    if not isinstance(term, dict):
        return None
    tid, label = str(term.get("id") or ""), str(term.get("label") or "")
    hit = _ISO.match(tid)
    if hit:
        return hit.group(1).upper()
    return COUNTRIES.get(tid) or NAMES.get(label.strip().lower())


def sex_of(term) -> str | None:
    if not isinstance(term, dict):
        return None
    return _SEX.get(str(term.get("id") or "")) or _SEX.get(str(term.get("label") or "").lower())


@dataclass
class Group:
    label: str  # DK, DK_F, DK_M
    samples: BitMap


@cachetools.cached(cachetools.LRUCache(64), key=load_key("countries"), lock=threading.Lock())
def groups(ctx: Context, dataset_id: str) -> list[Group]:
    """The country and country-and-sex groups of a dataset's samples (cached per
    process until the next load)."""
    sm = sample_map(ctx, dataset_id)
    members: dict[str, set] = {}
    for ind, doc in sampled_individuals(ctx, dataset_id, sm):
        country = country_of(doc.get("geographicOrigin"))
        if not country:
            continue
        members.setdefault(country, set()).add(ind)
        sex = sex_of(doc.get("sex"))
        if sex:
            members.setdefault(f"{country}_{sex}", set()).add(ind)
    return [Group(label, sm.samples_for(inds)) for label, inds in sorted(members.items())]


def country_frequencies(ctx: Context, dataset_id: str, row, adjust) -> list[dict]:
    """Entries per country and per country and sex for one variant row (empty when
    the dataset's individuals name no country, or the calls are not all diploid)."""
    hom_bytes = getattr(row, "hom_carriers", None)
    if hom_bytes is None:
        return []
    found = groups(ctx, dataset_id)
    if not found:
        return []
    n_samples = len(sample_map(ctx, dataset_id).by_name)
    if allele_number(row, n_samples) != 2 * n_samples or row.ac != row.het + 2 * row.hom:
        return []
    carriers = BitMap.deserialize(row.carriers)
    homs = BitMap.deserialize(hom_bytes)
    out = []
    for g in found:
        hom = homs.intersection_cardinality(g.samples)
        het = carriers.intersection_cardinality(g.samples) - hom
        out.append(_entry(g.label, het + 2 * hom, 2 * len(g.samples), hom, het, adjust))
    return out


# ---------------------------------------------------------------- filters
def split_filters(filters: list[dict]) -> tuple[list[dict], dict[str, str]]:
    """The request's filters without the population ones, and what those ask:
    ``{"sex": "F", "country": "DK"}``."""
    rest, wanted = [], {}
    for f in filters:
        kind = FILTER_IDS.get(f.get("id"))
        if kind and f.get("scope") in (POPULATION_SCOPE, None):
            value = str(f.get("value") or "").strip().upper()
            if kind == "sex":
                value = {"MALE": "M", "FEMALE": "F"}.get(value, value)
            if value and value != "ALL":
                wanted[kind] = value
            continue
        rest.append(f)
    return rest, wanted


def tag(population: str) -> tuple[str | None, str | None] | None:
    """``(country, sex)`` of a population label, as the portal parses it."""
    parts = population.strip().upper().split("_")
    sexes = {"F": "F", "FEMALE": "F", "M": "M", "MALE": "M"}
    if len(parts) == 1:
        if parts[0] in sexes:
            return None, sexes[parts[0]]
        if re.fullmatch(r"[A-Z]{2}", parts[0]):
            return parts[0], None
        return None
    if len(parts) == 2 and re.fullmatch(r"[A-Z]{2}", parts[0]) and parts[1] in sexes:
        return parts[0], sexes[parts[1]]
    return None


def matches(population: str, wanted: dict[str, str]) -> bool:
    t = tag(population)
    if t is None:
        return False
    country, sex = t
    if "country" in wanted and country != wanted["country"]:
        return False
    if "sex" in wanted and sex != wanted["sex"]:
        return False
    # both asked: only the entry of that country and sex
    return not (len(wanted) == 2 and (country is None or sex is None))


def keep_matching(docs: list[dict], wanted: dict[str, str]) -> None:
    """Keep, in place, only the frequencies of the asked population."""
    for doc in docs:
        items = []
        for item in doc.get("frequencyInPopulations") or []:
            freqs = [f for f in item["frequencies"] if matches(f["population"], wanted)]
            if freqs:
                items.append({**item, "frequencies": freqs})
        doc["frequencyInPopulations"] = items
