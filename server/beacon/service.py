"""Beacon v2 documents: framework endpoints and query responses.

Every function takes the settings, a database session and the ``Caller``; none
touches the web framework. Access is decided per dataset by
``server.auth.beacon_tier`` (record / count / boolean), and each dataset
is answered at its own tier in one response:

* a dataset at the record or count tier gets a ``resultSet`` (with
  ``info.returnedGranularity``), a dataset at the boolean tier an entry of
  ``info.booleanResultSets`` (``id``, ``exists``: a resultSet needs a count);
* ``meta.returnedGranularity`` is ``record`` when any resultSet carries
  records, else the least detailed tier among the datasets;
* the ``responseSummary`` never says more than the least detailed dataset
  allows: ``numTotalResults`` only when every dataset allows counts.

What the count and boolean tiers show is decided in ``server.beacon.tiers``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import namedtuple
from urllib.parse import urlsplit

import sqlalchemy as sa

from server.auth import Caller, beacon_resolves_people, beacon_tier
from server.auth.audit import Decision
from server.beacon import af, budget, collection, engine, populations
from server.beacon.budget import limits as budget_limits
from server.beacon.frequencies import frequencies
from server.beacon.request import API_VERSION, ENTRY_TYPES, BeaconRequest
from server.beacon.tables import (
    BeaconAnnotation,
    BeaconOntologyTerm,
    BeaconRecord,
    BeaconRecordTerm,
    BeaconRecordValue,
)
from server.beacon.tiers import (
    BOOLEAN,
    COUNT,
    NAMES,
    ORDER,
    RECORD,
    adjust,  # noqa: F401 - kept importable from here
    min_people,
    person_scoped,
    rule_text,
    shown_count,
)
from server.catalogue import metadata as catalogue_metadata
from server.db.prepared import fetch_all
from server.db.tables import DataFile
from server.errors import NotFound
from server.settings import Settings

SPEC_VERSION = "v2.0.0"

ENTITIES = {
    "g_variants": ("genomicVariant", "Genomic Variants", "genomicVariations"),
    "individuals": ("individual", "Individuals", "individuals"),
    "biosamples": ("biosample", "Biosamples", "biosamples"),
    "runs": ("run", "Sequencing runs", "runs"),
    "analyses": ("analysis", "Bioinformatics analyses", "analyses"),
    "cohorts": ("cohort", "Cohorts", "cohorts"),
    "datasets": ("dataset", "Datasets", "datasets"),
}
ONTOLOGY_OF = {
    "g_variants": ("ENSGLOSSARY:0000092", "Variant"),
    "individuals": ("NCIT:C25190", "Person"),
    "biosamples": ("NCIT:C70699", "Biospecimen"),
    "runs": ("NCIT:C148088", "Sequencing run"),
    "analyses": ("edam:operation_2945", "Analysis"),
    "cohorts": ("NCIT:C61512", "Cohort"),
    "datasets": ("NCIT:C47824", "Data set"),
}
# cross-entry endpoints: source endpoint -> target endpoints, as in the
# specification's default beaconMap (models/json/beacon-v2-default-model/beaconMap.json)
LINKS = {
    "g_variants": ("biosamples", "individuals", "analyses", "runs"),
    "individuals": ("g_variants", "biosamples", "analyses", "runs"),
    "biosamples": ("g_variants", "analyses", "runs"),
    "runs": ("g_variants", "analyses"),
    "analyses": ("g_variants",),
    "datasets": ("g_variants", "individuals", "biosamples", "analyses", "runs"),
    "cohorts": ("individuals", "g_variants", "biosamples", "analyses", "runs"),
}
RESOURCES = {
    "HP": (
        "hp",
        "Human Phenotype Ontology",
        "http://purl.obolibrary.org/obo/hp.owl",
        "http://purl.obolibrary.org/obo/HP_",
    ),
    "NCIT": (
        "ncit",
        "NCI Thesaurus",
        "http://purl.obolibrary.org/obo/ncit.owl",
        "http://purl.obolibrary.org/obo/NCIT_",
    ),
    "ICD10": (
        "icd10",
        "ICD-10",
        "https://icd.who.int/browse10",
        "https://icd.who.int/browse10/2019/en#/",
    ),
    "LOINC": ("loinc", "LOINC", "https://loinc.org", "https://loinc.org/"),
    "UBERON": (
        "uberon",
        "Uberon",
        "http://purl.obolibrary.org/obo/uberon.owl",
        "http://purl.obolibrary.org/obo/UBERON_",
    ),
    "EFO": (
        "efo",
        "Experimental Factor Ontology",
        "http://www.ebi.ac.uk/efo/efo.owl",
        "http://www.ebi.ac.uk/efo/EFO_",
    ),
    "OBI": (
        "obi",
        "Ontology for Biomedical Investigations",
        "http://purl.obolibrary.org/obo/obi.owl",
        "http://purl.obolibrary.org/obo/OBI_",
    ),
    "SO": (
        "so",
        "Sequence Ontology",
        "http://purl.obolibrary.org/obo/so.owl",
        "http://purl.obolibrary.org/obo/SO_",
    ),
    "Orphanet": (
        "ordo",
        "Orphanet Rare Disease Ontology",
        "http://www.orpha.net/ontology/ORDO_en.owl",
        "http://www.orpha.net/ORDO/Orphanet_",
    ),
    "OMIM": ("omim", "OMIM", "https://www.omim.org", "https://www.omim.org/entry/"),
    "DUO": (
        "duo",
        "Data Use Ontology",
        "http://purl.obolibrary.org/obo/duo.owl",
        "http://purl.obolibrary.org/obo/DUO_",
    ),
}
SO_EFFECTS = {
    "missense_variant": "SO:0001583",
    "synonymous_variant": "SO:0001819",
    "stop_gained": "SO:0001587",
    "stop_lost": "SO:0001578",
    "start_lost": "SO:0002012",
    "frameshift_variant": "SO:0001589",
    "splice_region_variant": "SO:0001630",
    "splice_acceptor_variant": "SO:0001574",
    "splice_donor_variant": "SO:0001575",
    "intron_variant": "SO:0001627",
    "5_prime_UTR_variant": "SO:0001623",
    "3_prime_UTR_variant": "SO:0001624",
    "upstream_gene_variant": "SO:0001631",
    "downstream_gene_variant": "SO:0001632",
    "intergenic_region": "SO:0000605",
    "intergenic_variant": "SO:0001628",
    "non_coding_transcript_exon_variant": "SO:0001792",
    "non_coding_transcript_variant": "SO:0001619",
    "inframe_insertion": "SO:0001821",
    "inframe_deletion": "SO:0001822",
    "disruptive_inframe_insertion": "SO:0001824",
    "disruptive_inframe_deletion": "SO:0001826",
    "conservative_inframe_insertion": "SO:0001823",
    "conservative_inframe_deletion": "SO:0001825",
    "stop_retained_variant": "SO:0001567",
    "start_retained_variant": "SO:0002019",
    "protein_altering_variant": "SO:0001818",
    "coding_sequence_variant": "SO:0001580",
    "exon_variant": "SO:0001791",
    "regulatory_region_variant": "SO:0001566",
    "TF_binding_site_variant": "SO:0001782",
    "sequence_feature": "SO:0000110",
    "intragenic_variant": "SO:0002011",
    "splice_polypyrimidine_tract_variant": "SO:0002169",
}


# ------------------------------------------------------------------ meta
def _base(settings: Settings) -> str:
    return settings.public_url.rstrip("/") + "/beacon/v2"


def _info_meta(settings: Settings, entity: str | None = None) -> dict:
    meta = {"beaconId": settings.beacon_id, "apiVersion": SPEC_VERSION, "returnedSchemas": []}
    if entity:
        meta["returnedSchemas"] = [
            {"entityType": entity, "schema": f"beacon-{entity}-{SPEC_VERSION}"}
        ]
    return meta


def _returned_schemas(entry: str) -> list[dict]:
    entity = ENTITIES[entry][0]
    return [{"entityType": entity, "schema": f"ga4gh-beacon-{entity}-{SPEC_VERSION}"}]


def organization(settings: Settings) -> dict:
    return {
        "id": "genomeport",
        "name": "genomeport node",
        "welcomeUrl": settings.public_url,
        "contactUrl": "mailto:dataops@localhost",
    }


def info(settings: Settings) -> dict:
    return {
        "meta": _info_meta(settings),
        "response": {
            "id": settings.beacon_id,
            "name": settings.beacon_name,
            "apiVersion": SPEC_VERSION,
            "environment": "dev" if "127.0.0.1" in settings.public_url else "prod",
            "organization": organization(settings),
            "description": "Beacon v2 of a genomeport node: variant and cohort discovery over "
            "its registered datasets, privacy tiers per dataset.",
            "version": "genomeport",
            "welcomeUrl": _base(settings),
            "createDateTime": "2026-11-01T00:00:00Z",
            "updateDateTime": "2026-11-01T00:00:00Z",
        },
    }


def service_info(settings: Settings) -> dict:
    return {
        "id": settings.beacon_id,
        "name": settings.beacon_name,
        "type": {"group": "org.ga4gh", "artifact": "beacon", "version": SPEC_VERSION},
        "description": "Beacon v2 of a genomeport node",
        "organization": {"name": "genomeport node", "url": settings.public_url},
        "contactUrl": "mailto:dataops@localhost",
        "version": "genomeport",
        "environment": "dev" if "127.0.0.1" in settings.public_url else "prod",
        "createdAt": "2026-11-01T00:00:00Z",
        "updatedAt": "2026-11-01T00:00:00Z",
    }


def _entry_type_definitions(settings: Settings) -> dict:
    base = _base(settings)
    out = {}
    for entry, (entity, name, model_dir) in ENTITIES.items():
        term_id, label = ONTOLOGY_OF[entry]
        out[entity] = {
            "id": entity,
            "name": name,
            "partOfSpecification": f"Beacon {SPEC_VERSION}",
            "ontologyTermForThisType": {"id": term_id, "label": label},
            "defaultSchema": {
                "id": f"ga4gh-beacon-{entity}-{SPEC_VERSION}",
                "name": f"Default schema for {name}",
                "referenceToSchemaDefinition": f"https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main/models/json/"
                f"beacon-v2-default-model/{model_dir}/defaultSchema.json",
                "schemaVersion": SPEC_VERSION,
            },
            "additionallySupportedSchemas": [],
            "aCollectionOf": [{"id": "dataset", "name": "Datasets"}] if entry == "datasets" else [],
            "filteringTerms": f"{base}/filtering_terms",
            "nonFilteredQueriesAllowed": True,
        }
        if entry not in ("datasets", "cohorts"):
            out[entity].pop("aCollectionOf")
    return out


def configuration(settings: Settings) -> dict:
    return {
        "meta": _info_meta(settings, "configuration"),
        "response": {
            "$schema": "https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main/framework/"
            "json/configuration/beaconConfigurationSchema.json",
            "maturityAttributes": {
                "productionStatus": "DEV" if "127.0.0.1" in settings.public_url else "PROD"
            },
            "securityAttributes": {
                "defaultGranularity": settings.beacon_default_granularity,
                "securityLevels": ["PUBLIC", "REGISTERED", "CONTROLLED"],
            },
            "entryTypes": _entry_type_definitions(settings),
            "info": {
                "privacy": {
                    "belowRecordTier": rule_text(settings),
                    "countThreshold": max(settings.beacon_count_threshold, 1),
                    "countRounding": max(settings.beacon_count_rounding, 1),
                    "queryBudget": {
                        "scope": "per caller and dataset, shared by every worker of the node; "
                        "fixed UTC minutes and days; 0 is unlimited; a refusal is a 429 "
                        "with Retry-After",
                        "perTier": {
                            t: budget_limits(settings, t) for t in ("boolean", "count", "record")
                        },
                    },
                }
            },
        },
    }


def entry_types(settings: Settings) -> dict:
    return {
        "meta": _info_meta(settings, "entryType"),
        "response": {"entryTypes": _entry_type_definitions(settings)},
    }


def beacon_map(settings: Settings) -> dict:
    base = _base(settings)
    endpoint_sets = {}
    for entry, (entity, _, _) in ENTITIES.items():
        ep = {
            "entryType": entity,
            "rootUrl": f"{base}/{entry}",
            "singleEntryUrl": f"{base}/{entry}/{{id}}",
            "endpoints": {},
        }
        for target in LINKS.get(entry, ()):
            ep["endpoints"][target] = {
                "returnedEntryType": ENTITIES[target][0],
                "url": f"{base}/{entry}/{{id}}/{target}",
            }
        if entry in ("individuals", "datasets", "cohorts"):
            ep["filteringTermsUrl"] = f"{base}/{entry}/{{id}}/filtering_terms"
        endpoint_sets[entity] = ep
    return {
        "meta": _info_meta(settings, "map"),
        "response": {
            "$schema": "https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/"
            "main/framework/json/configuration/beaconMapSchema.json",
            "endpointSets": endpoint_sets,
        },
    }


def error_document(settings: Settings | None, status: int, message: str) -> dict:
    beacon_id = settings.beacon_id if settings else Settings().beacon_id
    return {
        "meta": {
            "beaconId": beacon_id,
            "apiVersion": SPEC_VERSION,
            "returnedSchemas": [],
            "returnedGranularity": "boolean",
            "receivedRequestSummary": {
                "apiVersion": API_VERSION,
                "requestedSchemas": [],
                "pagination": {},
                "requestedGranularity": "boolean",
            },
        },
        "error": {"errorCode": int(status), "errorMessage": message},
    }


# ------------------------------------------------------------------ datasets
DatasetRow = namedtuple("DatasetRow", "id name description assembly access grant_value")
_DATASET_COLUMNS = "id, name, description, assembly, access, grant_value"
# The done rows of the load journal (engine._DONE_LOADS) and one more row
# holding the registry (every dataset, as one JSON array of rows ordered by
# id) in its first column, which the journal rows leave NULL: what a query
# needs before it can decide anything, in one round trip.
_REGISTRY = {
    "postgresql": (
        f"SELECT COALESCE(CAST(json_agg(json_build_array({_DATASET_COLUMNS}) ORDER BY id) "
        "AS text), '[]') FROM datasets"
    ),
    "sqlite": (
        f"SELECT json_group_array(json_array({_DATASET_COLUMNS})) "
        f"FROM (SELECT {_DATASET_COLUMNS} FROM datasets ORDER BY id)"
    ),
}


@functools.lru_cache(maxsize=4)
def _registry_and_journal(dialect: str) -> str:
    padding = ", ".join(["NULL"] * len(engine.LoadRow._fields))
    return (
        f"SELECT NULL AS datasets, l.* FROM ({engine._DONE_LOADS}) AS l "
        f"UNION ALL SELECT ({_REGISTRY[dialect]}), {padding}"
    )


def registry_and_journal(session) -> tuple[list[DatasetRow], list[tuple]]:
    """The dataset registry, ordered by id, and the done rows of the load
    journal (for ``engine.new_context``), in one statement."""
    dialect = session.get_bind().dialect.name
    datasets, journal = [], []
    for row in fetch_all(session, _registry_and_journal(dialect)):
        if row[0] is None:
            journal.append(row[1:])
        else:
            datasets = [DatasetRow(*d) for d in json.loads(row[0])]
    if dialect == "sqlite":  # aggregates keep no order there; BINARY order is code point order
        datasets.sort(key=lambda d: d.id)
    return datasets, journal


def _datasets(session, req: BeaconRequest, ctx: engine.Context, rows: list[DatasetRow]) -> list:
    by_id = {d.id: d for d in rows}
    if req.entry_type == "datasets" and req.entry_id:
        if req.entry_id not in by_id:
            raise NotFound(f"no dataset {req.entry_id!r}")
        return [by_id[req.entry_id]]
    if req.source_type == "dataset":
        if req.source_id not in by_id:
            raise NotFound(f"no dataset {req.source_id!r}")
        return [by_id[req.source_id]]
    if req.dataset_ids is not None:
        unknown = [d for d in req.dataset_ids if d not in by_id]
        for d in unknown:
            ctx.warn(f"dataset {d!r} is not known here; it was left out")
        return [by_id[d] for d in req.dataset_ids if d in by_id]
    if req.entry_type == "datasets":
        return rows
    kinds = ("vcf", "metadata", af.KIND) if req.entry_type == "g_variants" else ("vcf", "metadata")
    with_data = {r.dataset_id for r in ctx.loads if r.kind in kinds}
    return [d for d in rows if d.id in with_data]


# ------------------------------------------------------------------ documents
def _variant_docs(
    session,
    settings: Settings,
    rows: list,
    dataset_id: str,
    ctx: engine.Context | None = None,
    exact: bool = True,
) -> list[dict]:
    if not rows:
        return []
    anns: dict[int, list] = {}
    for a in session.execute(
        sa.select(BeaconAnnotation).where(BeaconAnnotation.variant_pk.in_([r.pk for r in rows]))
    ).scalars():
        anns.setdefault(a.variant_pk, []).append(a)
    docs = []
    for r in rows:
        doc = engine.variant_document(r)
        ids = {}
        if r.hgvs_g:
            ids["genomicHGVSId"] = r.hgvs_g
        if r.vcf_id:
            alt_ids = [
                {"id": f"dbSNP:{v}", "reference": f"https://www.ncbi.nlm.nih.gov/snp/{v}"}
                for v in r.vcf_id.split(";")
                if v.startswith("rs")
            ]
            if alt_ids:
                ids["variantAlternativeIds"] = alt_ids
        a_list = anns.get(r.pk, [])
        if a_list:
            c = sorted({f"{a.feature}:{a.hgvs_c}" for a in a_list if a.hgvs_c and a.feature})
            p = sorted({f"{a.feature}:{a.hgvs_p}" for a in a_list if a.hgvs_p and a.feature})
            if c:
                ids["transcriptHGVSIds"] = c[:20]
            if p:
                ids["proteinHGVSIds"] = p[:20]
            genes = sorted({a.gene for a in a_list if a.gene})
            effects = sorted({e for a in a_list for e in a.effect.split("&") if e})
            aa = sorted({a.aa_change for a in a_list if a.aa_change})
            mol = {}
            if genes:
                mol["geneIds"] = genes
            if effects:
                mol["molecularEffects"] = [
                    {"id": SO_EFFECTS.get(e, "SO:0001060"), "label": e} for e in effects
                ]
            if aa:
                mol["aminoacidChanges"] = aa
            if mol:
                doc["molecularAttributes"] = mol
        if ids:
            doc["identifiers"] = ids
        doc["frequencyInPopulations"] = [
            {
                "source": f"{settings.beacon_name} dataset {dataset_id}",
                "sourceReference": f"{_base(settings)}/datasets/{dataset_id}",
                "frequencies": frequencies(
                    ctx or engine.new_context(session),
                    dataset_id,
                    r,
                    lambda n: adjust(n, settings, exact),
                ),
            }
        ]
        by_country = populations.country_frequencies(
            ctx or engine.new_context(session), dataset_id, r, lambda n: adjust(n, settings, exact)
        )
        if by_country:
            doc["frequencyInPopulations"].append(
                {
                    "source": f"{settings.beacon_name} dataset {dataset_id}, "
                    "by country of birth and sex",
                    "sourceReference": f"{_base(settings)}/datasets/{dataset_id}",
                    "frequencies": by_country,
                }
            )
        docs.append(doc)
    return docs


def _dataset_doc(session, ds, settings: Settings | None = None) -> dict:
    bff = session.execute(
        sa.select(BeaconRecord.document)
        .where(BeaconRecord.dataset_id == ds.id, BeaconRecord.entry_type == "dataset")
        .order_by(BeaconRecord.id)
        .limit(1)
    ).scalar()
    doc = dict(bff or {})
    doc["id"] = ds.id
    doc["name"] = doc.get("name") or ds.name or ds.id
    if ds.description and not doc.get("description"):
        doc["description"] = ds.description
    info = dict(doc.get("info") or {})
    if settings is not None:  # the catalogue metadata, the same the FAIR Data Point gives
        fields = catalogue_metadata.beacon_fields(
            catalogue_metadata.of_dataset(session, settings, ds.id)
        )
        if catalogue_metadata.has_document(session, ds.id) or not bff:
            info.update(fields.pop("info"))
            doc.update(fields)
    info.update({"accessLevel": ds.access, "assembly": ds.assembly})
    doc["info"] = info
    return doc


def _handovers(session, settings: Settings, dataset_id: str, entry: str, ids: list[str]):
    q = sa.select(DataFile).where(DataFile.dataset_id == dataset_id).order_by(DataFile.object_id)
    files = session.execute(q).scalars().all()
    if entry in ("runs", "analyses"):
        keys = set(ids)
        for _rid, ind, bios in session.execute(
            sa.select(BeaconRecord.id, BeaconRecord.individual_id, BeaconRecord.biosample_id).where(
                BeaconRecord.dataset_id == dataset_id,
                BeaconRecord.entry_type == ENTRY_TYPES[entry],
                BeaconRecord.id.in_(ids),
            )
        ):
            keys |= {ind, bios}
        wanted = ("BAM", "CRAM") if entry == "runs" else ("VCF", "BCF")
        files = [
            f for f in files if f.format in wanted and (f.object_id in keys or entry == "analyses")
        ]
    host = urlsplit(settings.public_url).netloc
    out, seen = [], set()
    for f in files[:50]:
        if f.object_id in seen:
            continue
        seen.add(f.object_id)
        kind = "variants" if f.format in ("VCF", "BCF") else "reads"
        out.append(
            {
                "handoverType": {"id": "GA4GH:htsget", "label": "htsget"},
                "note": f"htsget {kind} of object {f.object_id}",
                "url": f"{settings.public_url.rstrip('/')}/{kind}/{f.object_id}",
            }
        )
        out.append(
            {
                "handoverType": {"id": "GA4GH:drs", "label": "DRS"},
                "note": f"DRS object {f.object_id}",
                "url": f"drs://{host}/{f.object_id}",
            }
        )
    return out


def _record_docs(session, dataset_id: str, entry: str, ids: list[str]) -> list[dict]:
    if not ids:
        return []
    rows = dict(
        session.execute(
            sa.select(BeaconRecord.id, BeaconRecord.document).where(
                BeaconRecord.dataset_id == dataset_id,
                BeaconRecord.entry_type == ENTRY_TYPES[entry],
                BeaconRecord.id.in_(ids),
            )
        ).all()
    )
    return [rows[i] for i in ids if i in rows]


# ------------------------------------------------------------------ query
def _result_sets(
    session, settings: Settings, req: BeaconRequest, results: list, tiers: dict, shown: dict, ctx
) -> tuple[list, list]:
    """One resultSet per record or count dataset, each at its own tier, and the
    ``{id, exists}`` entries of the boolean ones (a resultSet needs a count)."""
    sets, boolean_sets = [], []
    if req.include == "NONE":
        return sets, boolean_sets
    for d, count, m in results:
        hit = count > 0
        if (req.include == "HIT" and not hit) or (req.include == "MISS" and hit):
            continue
        granularity = shown[d.id]
        if granularity == ORDER[BOOLEAN]:
            boolean_sets.append({"id": d.id, "setType": "dataset", "exists": hit})
            continue
        rs = {
            "id": d.id,
            "beaconId": settings.beacon_id,  # as networks tag each set (the GDI portal reads it)
            "setType": "dataset",
            "exists": hit,
            "resultsCount": count,
            "results": [],
            "info": {
                "returnedGranularity": NAMES[granularity],
                "countPrecision": "exact" if tiers[d.id] == RECORD else "rounded",
            },
        }
        if granularity == ORDER[RECORD]:
            if isinstance(m, af.Matches):
                exact = tiers[d.id] == RECORD
                rs["results"] = m.documents(
                    settings, d.id, lambda n, exact=exact: adjust(n, settings, exact)
                )
            elif req.entry_type == "g_variants":
                rs["results"] = _variant_docs(
                    session, settings, m.page, d.id, ctx, exact=tiers[d.id] == RECORD
                )
            elif req.entry_type == "datasets":
                rs["results"] = [_dataset_doc(session, d, settings)] if m.page else []
            else:
                rs["results"] = _record_docs(session, d.id, req.entry_type, m.page)
            if req.entry_type in ("runs", "analyses", "datasets") and hit:
                handovers = _handovers(session, settings, d.id, req.entry_type, list(m.page))
                if handovers:
                    rs["resultsHandovers"] = handovers
            rs["info"]["pagination"] = {
                "skip": req.skip,
                "limit": req.limit,
                "returned": len(rs["results"]),
            }
        sets.append(rs)
    return sets, boolean_sets


def query(
    session, settings: Settings, caller: Caller, req: BeaconRequest, *, spend=None
) -> tuple[dict, dict]:
    """The Beacon response for ``req`` and an audit summary (no genotypes).

    Each dataset is answered at the caller's own tier for it (``server.beacon.tiers``
    has the rules below the record tier). ``spend(tiers)``, when given, charges the
    caller's query budget for the datasets asked about (``{dataset id: tier}``)
    before any of them is read; it raises ``TooManyRequests`` when spent.
    """
    rows, journal = registry_and_journal(session)
    ctx = engine.new_context(session, journal)
    for text in req.warnings:
        ctx.warn(text)
    other_filters, wanted_population = populations.split_filters(req.filters)
    if len(other_filters) != len(req.filters):  # the GDI portal's sex and country filters
        req = dataclasses.replace(req, filters=other_filters)
    datasets = _datasets(session, req, ctx, rows)
    tiers = {d.id: beacon_tier(caller, d) for d in datasets}
    if spend is not None:
        spend(tiers)
    requested = ORDER[req.granularity]
    shown = {d.id: min(requested, ORDER[tiers[d.id]]) for d in datasets}
    least = min(shown.values(), default=requested)
    most = max(shown.values(), default=requested)
    # the response carries records as soon as one dataset gives them; the
    # summary never says more than the least detailed dataset allows
    returned = ORDER[RECORD] if most == ORDER[RECORD] else least
    returned_name = NAMES[returned]
    engine.check_filters(ctx, req.filters)
    loads = ctx.vcf_loads([d.id for d in datasets])
    genomic = (
        engine.genomic_conditions(ctx, req, [d.id for d in datasets])
        if req.genomic
        else engine.Genomic()
    )
    scoped = person_scoped(req)
    frequency_only = af.frequency_datasets(ctx)
    results, total, any_adjusted = [], 0, False
    for d in datasets:
        tier = tiers[d.id]
        if scoped and not beacon_resolves_people(tier):
            m = engine.Matches(0, [])  # as if the id did not exist (no per-person oracle)
        elif d.id in frequency_only:  # aggregate counts only (server.beacon.af)
            m = af.evaluate(
                ctx,
                req,
                d.id,
                genomic,
                want_page=shown[d.id] == ORDER[RECORD],
                min_people=min_people(settings, tier),
            )
        else:
            m = engine.evaluate(
                ctx,
                req,
                d.id,
                loads.get(d.id, []),
                genomic,
                want_page=shown[d.id] == ORDER[RECORD],
                min_people=min_people(settings, tier),
            )
        count = shown_count(req.entry_type, m.count, settings, tier)
        any_adjusted |= tier != RECORD
        total += count
        results.append((d, count, m))
    if (
        req.entry_id is not None
        and total == 0
        and req.entry_type != "datasets"
        and least == ORDER[RECORD]
        and not req.source_type
    ):
        raise NotFound(
            f"no {ENTITIES[req.entry_type][0]} {req.entry_id!r} in the datasets you may see"
        )
    meta = {
        "beaconId": settings.beacon_id,
        "apiVersion": SPEC_VERSION,
        "returnedGranularity": returned_name,
        "receivedRequestSummary": req.summary(),
        "returnedSchemas": _returned_schemas(req.entry_type),
        "testMode": req.test_mode,
    }
    summary = {"exists": total > 0}
    if least >= ORDER[COUNT]:
        summary["numTotalResults"] = total
        summary["countPrecision"] = "rounded" if any_adjusted else "exact"
        if any_adjusted:
            summary["countAdjustedTo"] = [
                f"suppressed below {settings.beacon_count_threshold}",
                f"rounded to {settings.beacon_count_rounding}",
            ]
    body: dict = {"meta": meta, "responseSummary": summary}
    info: dict = {}
    if req.limit_capped:
        info["pagination"] = {"limitCappedTo": req.limit, "maxLimit": settings.beacon_max_limit}
        ctx.warn(f"limit {req.requested_limit} was capped to {req.limit}")
    if req.entry_type in collection.COLLECTIONS:
        collection.respond(
            body,
            session,
            req,
            results,
            tiers,
            ctx,
            lambda session, ds: _dataset_doc(session, ds, settings),
            _record_docs,
            lambda *a: _handovers(session, settings, *a[1:]),
        )
    else:
        sets, boolean_sets = _result_sets(session, settings, req, results, tiers, shown, ctx)
        if wanted_population and req.entry_type == "g_variants":
            for rs in sets:
                populations.keep_matching(rs["results"], wanted_population)
        if req.include == "NONE":
            body["response"] = {"resultSets": []}  # the schema wants the section, even empty
        elif sets or returned >= ORDER[COUNT]:
            body["response"] = {"resultSets": sets}
        if boolean_sets:  # per dataset, as much as the boolean tier tells
            info["booleanResultSets"] = boolean_sets
    if ctx.warnings:
        info["warnings"] = ctx.warnings
    if info:
        body["info"] = info
    audit = {
        "entry": req.entry_type,
        "entryId": req.entry_id,
        "source": req.source_type,
        "params": req.params,
        "filters": [f["id"] for f in req.filters],
        "granularity": returned_name,
        "datasets": {
            d.id: {"tier": tiers[d.id], "shown": NAMES[shown[d.id]], "count": c}
            for d, c, _ in results
        },
    }
    return body, audit


def answer(
    db, settings: Settings, caller: Caller, req: BeaconRequest, *, method: str, budget_key: str
) -> dict:
    """``query`` in a session of its own, charged to ``budget_key``'s budget,
    with its one audit row: written on the query's connection and committed
    with it, before the response is sent. A failed query is recorded as an
    ``error``, one refused by the budget as ``refused``.

    On PostgreSQL (READ COMMITTED: every statement reads its own snapshot
    anyway) the statements run in autocommit mode, which spares the BEGIN and
    COMMIT round trips.
    """
    decision = Decision(
        db,
        caller,
        api="beacon",
        action=f"{method} {req.entry_type}",
        query={"entry": req.entry_type, "params": req.params},
        refusals=(),
        failures=Exception,
    )
    with decision, db.session() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})

        def spend(tiers):  # the caller's budget for these datasets, before any is read
            budget.spend(session, settings, budget_key, tiers)

        response, audit = query(session, settings, caller, req, spend=spend)
        decision.grant(
            dataset_id=",".join(audit["datasets"])[:128],
            query=audit,
            connection=session.connection(),
        )
    return response


# ------------------------------------------------------------------ filtering terms
def _narrowed(q, table, dataset_id: str | None, entry: str | None, record_id: str | None):
    """``q`` on ``table`` (terms or values) kept to one dataset, entry endpoint and
    record, each where given."""
    if dataset_id:
        q = q.where(table.dataset_id == dataset_id)
    if entry:
        q = q.where(table.entry_type == ENTRY_TYPES[entry])
    if record_id:
        q = q.where(table.record_id == record_id)
    return q


def filtering_terms(
    session,
    settings: Settings,
    *,
    dataset_id: str | None = None,
    entry: str | None = None,
    record_id: str | None = None,
    skip: int = 0,
    limit: int = 0,
) -> dict:
    T = BeaconRecordTerm
    q = sa.select(T.term, T.kind, T.entry_type, sa.func.max(T.label)).group_by(
        T.term, T.kind, T.entry_type
    )
    q = _narrowed(q, T, dataset_id, entry, record_id)
    plural = {v: k for k, v in ENTRY_TYPES.items()}
    terms: dict[str, dict] = {}
    labels = {}
    for term, kind, etype, label in session.execute(q):
        t = terms.setdefault(
            term,
            {"type": "ontologyTerm" if kind == "ontology" else "custom", "id": term, "scopes": []},
        )
        if label:
            labels[term] = label
        if plural[etype] not in t["scopes"]:
            t["scopes"].append(plural[etype])
    missing = [t for t in terms if t not in labels and terms[t]["type"] == "ontologyTerm"]
    for i in range(0, len(missing), 500):
        for tid, label in session.execute(
            sa.select(BeaconOntologyTerm.id, BeaconOntologyTerm.label).where(
                BeaconOntologyTerm.id.in_(missing[i : i + 500])
            )
        ):
            labels[tid] = label
    for term, label in labels.items():
        if term in terms:
            terms[term]["label"] = label
    vq = sa.select(BeaconRecordValue.field, BeaconRecordValue.entry_type).distinct()
    vq = _narrowed(vq, BeaconRecordValue, dataset_id, entry, record_id)
    for field, etype in session.execute(vq):
        key = "alphanumeric:" + field
        t = terms.setdefault(key, {"type": "alphanumeric", "id": field, "scopes": []})
        if plural[etype] not in t["scopes"]:
            t["scopes"].append(plural[etype])
    items = sorted(terms.values(), key=lambda t: (t["type"], t["id"]))
    if limit:
        items = items[skip * limit : (skip + 1) * limit]
    prefixes = {t["id"].split(":")[0] for t in items if t["type"] == "ontologyTerm"}
    resources = []
    for prefix in sorted(prefixes):
        if prefix in RESOURCES:
            rid, name, url, iri = RESOURCES[prefix]
            resources.append(
                {"id": rid, "name": name, "url": url, "namespacePrefix": prefix, "iriPrefix": iri}
            )
        else:
            resources.append({"id": prefix.lower(), "name": prefix, "namespacePrefix": prefix})
    return {
        "meta": _info_meta(settings, "filteringTerm"),
        "response": {"filteringTerms": items, "resources": resources},
    }
