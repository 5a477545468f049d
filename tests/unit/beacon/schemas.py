"""Validate Beacon documents against the published Beacon v2 JSON schemas
(../shared/beacon-v2-schemas), working around the quirks listed in its SOURCE.txt."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[3].parent / "shared" / "beacon-v2-schemas"
RAW = "https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main/"
VRS = "https://w3id.org/ga4gh/schema/vrs/1.3/vrs.json"
# A stand-in for VRS 1.3: VRS variations carry a "type"; the legacy form does not.
VRS_STUB = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "definitions": {
        "MolecularVariation": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": ["Allele", "Haplotype"]}},
        },
        "SystemicVariation": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": ["CopyNumber"]}},
        },
        "Location": {"type": "object"},
    },
}
BY_GRANULARITY = {
    "boolean": "beaconBooleanResponse.json",
    "count": "beaconCountResponse.json",
    "record": "beaconResultsetsResponse.json",
}
ENTITY_DIRS = {
    "g_variants": "genomicVariations",
    "individuals": "individuals",
    "biosamples": "biosamples",
    "runs": "runs",
    "analyses": "analyses",
    "cohorts": "cohorts",
    "datasets": "datasets",
}


def _uri(path: Path) -> str:
    return path.resolve().as_uri()


@lru_cache(maxsize=1)
def registry() -> Registry:
    resources = []
    info = json.loads((ROOT / "framework/json/common/info.json").read_text())
    for path in ROOT.rglob("*.json"):
        text = path.read_text()
        # the endpoints.json quirk: #/definitions/ where #/$defs/ is meant
        text = text.replace(
            "beaconCommonComponents.json#/definitions/", "beaconCommonComponents.json#/$defs/"
        )
        doc = json.loads(text)
        doc.pop("$id", None)
        res = Resource.from_contents(
            doc,
            default_specification=Draft202012Validator.META_SCHEMA
            and __import__("referencing.jsonschema").jsonschema.DRAFT202012,
        )
        rel = path.relative_to(ROOT).as_posix()
        resources.append((_uri(path), res))
        resources.append((RAW + rel, res))
    draft = __import__("referencing.jsonschema").jsonschema.DRAFT202012
    info_res = Resource.from_contents(info, default_specification=draft)
    for _entity in (
        "analyses",
        "biosamples",
        "datasets",
        "individuals",
        "runs",
        "cohorts",
        "genomicVariations",
    ):
        resources.append(
            (_uri(ROOT / "models/json/beacon-v2-default-model/common/info.json"), info_res)
        )
        resources.append((RAW + "models/json/beacon-v2-default-model/common/info.json", info_res))
    resources.append((VRS, Resource.from_contents(VRS_STUB, default_specification=draft)))
    return Registry().with_resources(resources)


def _validate(doc: dict, schema_path: Path) -> None:
    reg = registry()
    schema = reg.contents(_uri(schema_path))
    validator = Draft202012Validator({"$ref": _uri(schema_path)}, registry=reg)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, f"{schema_path.name}: " + "; ".join(
        f"{list(e.path)}: {e.message[:300]}" for e in errors[:5]
    )
    del schema


def validate_response(body: dict, entry: str | None = None) -> None:
    """A query response: by returnedGranularity; records against their entity schema."""
    granularity = body["meta"]["returnedGranularity"]
    if entry in ("datasets", "cohorts"):  # beaconCollectionsResponse, whatever the granularity
        _validate(body, ROOT / "framework/json/responses/beaconCollectionsResponse.json")
        schema = (
            ROOT / "models/json/beacon-v2-default-model" / ENTITY_DIRS[entry] / "defaultSchema.json"
        )
        for collection in body["response"]["collections"]:
            _validate(collection, schema)
        return
    _validate(body, ROOT / "framework/json/responses" / BY_GRANULARITY[granularity])
    if granularity == "record" and entry:
        schema = (
            ROOT / "models/json/beacon-v2-default-model" / ENTITY_DIRS[entry] / "defaultSchema.json"
        )
        for rs in body["response"]["resultSets"]:
            for result in rs["results"]:
                _validate(result, schema)


def validate_document(body: dict, name: str) -> None:
    """A framework response: name is e.g. beaconInfoResponse, beaconMapResponse."""
    _validate(body, ROOT / "framework/json/responses" / f"{name}.json")


def validate_error(body: dict) -> None:
    _validate(body, ROOT / "framework/json/responses/beaconErrorResponse.json")
