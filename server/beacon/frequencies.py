"""``frequencyInPopulations`` of a g_variants record (Beacon v2.2 allele frequencies).

One entry for the whole dataset (the allele's stored AC, homozygous and
heterozygous counts, and its allele number from
``server.beacon.store.allele_number``), then one per sex and one per population (the
individuals' ``ethnicity``) among the dataset's individuals that have samples
in the VCF. Counts by subset come from set algebra on Roaring bitmaps over the
dataset's sample index: the allele's carriers and homozygous carriers, each
intersected with the subset's samples.

A subset's allele number is two per sample less what the subset's gVCF
genomes with a coverage gap at the site lack (``server.beacon.coverage``: the
short genomes' sample indexes intersected with the subset's), so subset
entries are given only for alleles whose every reported call was diploid;
haploid or missing calls in the genomes' own records, and rows loaded before
homozygous carriers were stored, leave just the dataset entry. Below the record tier every count
goes through ``service.adjust`` (the tier rule), and the frequency is computed
from the adjusted counts, so nothing finer than the tier allows is shown.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cachetools
import sqlalchemy as sa
from pyroaring import BitMap

from server.beacon import coverage
from server.beacon.engine import Context, load_key, sample_map
from server.beacon.store import allele_number
from server.beacon.tables import BeaconRecord


@dataclass
class Subset:
    kind: str  # "sex" | "population"
    term: str  # ontology id of the sex or ethnicity
    label: str
    samples: BitMap


def sampled_individuals(ctx: Context, dataset_id: str, sm):
    """(id, document) of each individual of the dataset that has samples in
    the sample map ``sm`` and a document."""
    rows = ctx.session.execute(
        sa.select(BeaconRecord.id, BeaconRecord.document).where(
            BeaconRecord.dataset_id == dataset_id, BeaconRecord.entry_type == "individual"
        )
    )
    for ind, doc in rows:
        if ind in sm.samples_of_individual and isinstance(doc, dict):
            yield ind, doc


@cachetools.cached(cachetools.LRUCache(64), key=load_key("subsets"), lock=threading.Lock())
def subsets(ctx: Context, dataset_id: str) -> list[Subset]:
    """The sex and population subsets of a dataset's samples (cached per process
    until the next load)."""
    sm = sample_map(ctx, dataset_id)
    groups: dict[tuple[str, str], tuple[str, set]] = {}
    for ind, doc in sampled_individuals(ctx, dataset_id, sm):
        for kind, field in (("sex", "sex"), ("population", "ethnicity")):
            term = doc.get(field)
            if not isinstance(term, dict) or not (term.get("label") or term.get("id")):
                continue
            label = str(term.get("label") or term.get("id"))
            entry = groups.setdefault((kind, label), (str(term.get("id") or ""), set()))
            entry[1].add(ind)
    return [
        Subset(kind, term, label, sm.samples_for(inds))
        for (kind, label), (term, inds) in sorted(groups.items())
    ]


def _entry(population: str, ac: int, an: int, hom: int, het: int, adjust, hemi: int = 0) -> dict:
    ac, an, hom, het, hemi = adjust(ac), adjust(an), adjust(hom), adjust(het), adjust(hemi)
    return {
        "population": population,
        "alleleFrequency": (ac / an) if an else 0.0,
        "alleleCount": ac,
        "alleleNumber": an,
        "alleleCountHomozygous": hom,
        "alleleCountHeterozygous": het,
        "alleleCountHemizygous": hemi,
    }


@dataclass
class Called:
    """Who is called at one record: its AN, and the gVCF genomes one or two
    alleles short there (``server.beacon.coverage``)."""

    an: int
    one: BitMap
    two: BitMap
    diploid: bool  # every call the genomes reported here is diploid

    def subset_an(self, samples: BitMap) -> int:
        return 2 * len(samples) - coverage.alleles_short_of(self.one, self.two, samples)


def called(ctx: Context, dataset_id: str, row) -> Called:
    """The allele number of a record, in the one place queries compute it."""
    n_samples = len(sample_map(ctx, dataset_id).by_name)
    one, two = coverage.short_at(ctx, dataset_id, row)
    short = coverage.alleles_short_of(one, two)
    an = allele_number(row, n_samples, short=short)
    diploid = an + short == 2 * n_samples and row.ac == row.het + 2 * row.hom
    return Called(an, one, two, diploid)


def subset_entries(row, groups, at: Called, adjust) -> list[dict]:
    """One entry per subset (``.label``, ``.samples``) of the dataset's samples,
    by set algebra on the record's carriers."""
    carriers = BitMap.deserialize(row.carriers)
    homs = BitMap.deserialize(row.hom_carriers)
    out = []
    for g in groups:
        hom = homs.intersection_cardinality(g.samples)
        het = carriers.intersection_cardinality(g.samples) - hom
        out.append(_entry(g.label, het + 2 * hom, at.subset_an(g.samples), hom, het, adjust))
    return out


def frequencies(ctx: Context, dataset_id: str, row, adjust) -> list[dict]:
    """The ``frequencies`` list of one variant row; ``adjust(count)`` applies the
    caller's tier rule to every count."""
    at = called(ctx, dataset_id, row)
    # alleles of haploid calls (AC less those of diploid carriers) are hemizygous
    hemi = max(row.ac - row.het - 2 * row.hom, 0)
    out = [_entry(dataset_id, row.ac, at.an, row.hom, row.het, adjust, hemi)]
    if getattr(row, "hom_carriers", None) is None:
        return out
    groups = subsets(ctx, dataset_id)
    if not groups or not at.diploid:
        return out  # haploid or missing calls: no per-subset allele number
    return out + subset_entries(row, groups, at, adjust)
