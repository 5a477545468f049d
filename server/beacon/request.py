"""One normalized Beacon request from a GET query string or a POST body.

GET and POST are turned into the same ``BeaconRequest``, so they give the same
answer. Coordinates are 0-based (Beacon v2 ``start``/``end``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from server.errors import InvalidInput

# entry endpoint (``BeaconRequest.entry_type``) -> the entry type its records are stored as
ENTRY_TYPES = {
    "g_variants": "g_variant",
    "individuals": "individual",
    "biosamples": "biosample",
    "runs": "run",
    "analyses": "analysis",
    "cohorts": "cohort",
    "datasets": "dataset",
}
GRANULARITIES = ("boolean", "count", "record")
INCLUDE = ("HIT", "MISS", "ALL", "NONE")
GENOMIC_KEYS = (
    "assemblyId",
    "referenceName",
    "start",
    "end",
    "referenceBases",
    "alternateBases",
    "variantType",
    "variantMinLength",
    "variantMaxLength",
    "geneId",
    "aminoacidChange",
    "genomicAlleleShortForm",
    "mateName",
)
_BASES = re.compile(r"^[ACGTUNRYSWKMBDHV.\-]*$", re.IGNORECASE)
API_VERSION = "v2.0"
INT64_MAX = 2**63 - 1  # the largest integer the schemas (format int64) and the databases take
MAX_DEPTH = 16  # how deeply a POST body may nest (a beaconRequestBody needs 5 levels)
SIMILARITY = ("exact", "high", "medium", "low")
# the request's known names; anything else is named in info.warnings
GET_KEYS = frozenset(GENOMIC_KEYS) | {
    "filters",
    "skip",
    "limit",
    "requestedGranularity",
    "includeResultsetResponses",
    "testMode",
    "datasetIds",
    "datasets",
    "requestedSchemas",
    "apiVersion",
}
BODY_KEYS = {"meta", "query"}
META_KEYS = {"apiVersion", "requestedSchemas", "beaconId"}
QUERY_KEYS = {
    "requestParameters",
    "filters",
    "includeResultsetResponses",
    "pagination",
    "requestedGranularity",
    "testMode",
}
PARAMETER_KEYS = frozenset(GENOMIC_KEYS) | {"datasetIds", "datasets"}
FILTER_KEYS = {"id", "operator", "value", "scope", "includeDescendantTerms", "similarity"}


@dataclass
class BeaconRequest:
    entry_type: str
    entry_id: str | None = None
    source_type: str | None = None  # cross-entry: /individuals/{id}/g_variants
    source_id: str | None = None
    params: dict = field(default_factory=dict)  # genomic request parameters
    dataset_ids: list[str] | None = None
    filters: list[dict] = field(default_factory=list)
    skip: int = 0
    limit: int = 10
    limit_capped: bool = False
    requested_limit: int = 10
    granularity: str = "boolean"
    include: str = "HIT"
    test_mode: bool = False
    api_version: str = API_VERSION
    requested_schemas: list = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # for info.warnings

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    @property
    def genomic(self) -> bool:
        return any(k in self.params for k in GENOMIC_KEYS if k != "mateName")

    def summary(self) -> dict:
        """``meta.receivedRequestSummary``: the request as it was understood."""
        out = {
            "apiVersion": self.api_version,
            "requestedSchemas": self.requested_schemas,
            "pagination": {"skip": self.skip, "limit": self.requested_limit},
            "requestedGranularity": self.granularity,
            "includeResultsetResponses": self.include,
            "testMode": self.test_mode,
        }
        if self.filters:
            out["filters"] = [_filter_text(f) for f in self.filters]
        params = dict(self.params)
        if self.dataset_ids is not None:
            params["datasetIds"] = list(self.dataset_ids)
        if params:
            out["requestParameters"] = {"g_variant": params}
        return out


def _filter_text(f: dict) -> str:
    if "operator" in f:
        return f"{f['id']}{f['operator']}{f.get('value', '')}"
    return str(f.get("_asked", f["id"]))  # as asked (before PATO -> NCIT)


def _ints(value, name: str) -> list[int]:
    if value is None or value == "" or value == []:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    out = []
    for item in items:
        if isinstance(item, bool):
            raise InvalidInput(f"{name} must be an integer")
        try:
            n = int(str(item).strip())
        except ValueError:
            raise InvalidInput(f"{name} must be an integer, got {item!r}") from None
        if n < 0:
            raise InvalidInput(f"{name} must be >= 0 (0-based coordinates)")
        if n > INT64_MAX:
            raise InvalidInput(f"{name} {n} is out of range (at most {INT64_MAX})")
        out.append(n)
    return out


def _bool(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no", ""):
        return False
    raise InvalidInput(f"{name} must be true or false")


def parse_filters(raw) -> list[dict]:
    """Filters as objects; a GET ``filters=HP:1,NCIT:2`` gives ontology filters."""
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [s for s in raw.split(",") if s.strip()]
    if not isinstance(raw, list):
        raise InvalidInput("filters must be a list")
    out = []
    for item in raw:
        if isinstance(item, str):
            item = {"id": item.strip()}
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise InvalidInput("each filter needs a string 'id'")
        f = dict(item)
        if "operator" in f or "value" in f:
            if f.get("operator", "=") not in ("=", "<", ">", "!", ">=", "<="):
                raise InvalidInput(f"filter {f['id']}: operator must be one of = < > ! >= <=")
            f.setdefault("operator", "=")
            if "value" not in f:
                raise InvalidInput(f"filter {f['id']}: an alphanumeric filter needs a value")
            f["value"] = str(f["value"])
        if "includeDescendantTerms" in f:
            f["includeDescendantTerms"] = _bool(
                f["includeDescendantTerms"], "includeDescendantTerms"
            )
        if "similarity" in f and (
            not isinstance(f["similarity"], str) or f["similarity"] not in SIMILARITY
        ):
            raise InvalidInput(
                f"filter {f['id']}: similarity must be one of " + ", ".join(SIMILARITY)
            )
        out.append(f)
    return out


def filter_warnings(filters: list[dict]) -> list[str]:
    """What the node says about filter options it does not apply as asked."""
    out = []
    for f in filters:
        unknown = sorted(k for k in f if k not in FILTER_KEYS and not k.startswith("_"))
        if unknown:
            out.append(f"filter {f['id']}: unknown field(s) {', '.join(unknown)} ignored")
        if f.get("similarity", "exact") != "exact":
            out.append(
                f"filter {f['id']}: similarity {f['similarity']!r} is not implemented; "
                "the term was matched exactly (with its descendant terms unless "
                "includeDescendantTerms is false)"
            )
    return out


def _depth(value, limit: int, level: int = 1) -> int:
    """How deeply ``value`` nests (lists and objects), stopping past ``limit``."""
    if level > limit:
        return level
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return max((_depth(v, limit, level + 1) for v in value), default=level)
    return level - 1


def check_depth(body, limit: int = MAX_DEPTH) -> None:
    if _depth(body, limit) > limit:
        raise InvalidInput(f"the request body nests deeper than {limit} levels")


def _unknown(names, known, where: str) -> list[str]:
    extra = sorted(str(k) for k in names if k not in known)
    return [f"unknown {where} {k!r} ignored" for k in extra]


def build(
    entry_type: str,
    *,
    entry_id=None,
    source_type=None,
    source_id=None,
    params: dict | None = None,
    filters=None,
    skip=None,
    limit=None,
    granularity=None,
    include=None,
    test_mode=None,
    dataset_ids=None,
    api_version=None,
    requested_schemas=None,
    default_limit: int = 10,
    max_limit: int = 1000,
    default_granularity: str = "boolean",
) -> BeaconRequest:
    # an empty referenceBases / alternateBases is a trimmed indel, not a missing value
    params = {
        k: v
        for k, v in (params or {}).items()
        if v is not None and v != [] and (v != "" or k in ("referenceBases", "alternateBases"))
    }
    clean: dict = {}
    for key, value in params.items():
        if key in ("start", "end"):
            clean[key] = _ints(value, key)
        elif key in ("variantMinLength", "variantMaxLength"):
            nums = _ints(value, key)
            if len(nums) != 1:
                raise InvalidInput(f"{key} must be one integer")
            clean[key] = nums[0]
        elif key in ("referenceBases", "alternateBases"):
            if not isinstance(value, str) or not _BASES.match(value):
                raise InvalidInput(f"{key} must be a sequence of IUPAC bases")
            clean[key] = value.upper()
        elif key in GENOMIC_KEYS:
            if not isinstance(value, str):
                raise InvalidInput(f"{key} must be a string")
            clean[key] = value.strip()
    req = BeaconRequest(entry_type, entry_id, source_type, source_id, params=clean)
    if dataset_ids:
        ids = dataset_ids if isinstance(dataset_ids, list) else str(dataset_ids).split(",")
        req.dataset_ids = [str(i).strip() for i in ids if str(i).strip()]
    req.filters = parse_filters(filters)
    try:
        req.skip = int(skip) if skip not in (None, "") else 0
        lim = int(limit) if limit not in (None, "") else default_limit
    except (TypeError, ValueError):
        raise InvalidInput("skip and limit must be integers") from None
    if req.skip < 0 or lim < 0:
        raise InvalidInput("skip and limit must be >= 0")
    if req.skip > INT64_MAX or lim > INT64_MAX:
        raise InvalidInput(f"skip and limit must be at most {INT64_MAX}")
    req.requested_limit = lim
    if lim == 0 or lim > max_limit:
        req.limit, req.limit_capped = max_limit, True
    else:
        req.limit = lim
    req.granularity = granularity or default_granularity
    if req.granularity not in GRANULARITIES:
        raise InvalidInput("requestedGranularity must be boolean, count or record")
    req.include = (include or "HIT").upper()
    if req.include not in INCLUDE:
        raise InvalidInput("includeResultsetResponses must be HIT, MISS, ALL or NONE")
    if req.skip * req.limit > INT64_MAX:
        raise InvalidInput(f"skip {req.skip} pages of {req.limit} is beyond the last result")
    req.test_mode = _bool(test_mode, "testMode") if test_mode is not None else False
    if api_version:
        req.api_version = str(api_version)
    if requested_schemas:
        req.requested_schemas = list(requested_schemas)
    for text in filter_warnings(req.filters):
        req.warn(text)
    return req


# build() argument -> its name in a GET query string and in a POST body's ``query``
_QUERY_FIELDS = {
    "filters": "filters",
    "granularity": "requestedGranularity",
    "include": "includeResultsetResponses",
    "test_mode": "testMode",
}


def _query_fields(query: dict, pagination: dict) -> dict:
    """The build() arguments a GET query string and a POST body name alike: GET
    has all of them in one place, POST has skip and limit in ``query.pagination``."""
    fields = {arg: query.get(name) for arg, name in _QUERY_FIELDS.items()}
    return fields | {"skip": pagination.get("skip"), "limit": pagination.get("limit")}


def from_get(entry_type: str, args: dict, **kw) -> BeaconRequest:
    params = {k: args.get(k) for k in GENOMIC_KEYS if args.get(k) is not None}
    req = build(
        entry_type,
        params=params,
        dataset_ids=args.get("datasetIds") or args.get("datasets"),
        **_query_fields(args, args),
        **kw,
    )
    for text in _unknown(args, GET_KEYS, "request parameter"):
        req.warn(text)
    return req


def from_post(entry_type: str, body: dict | None, **kw) -> BeaconRequest:
    body = body or {}
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object (beaconRequestBody)")
    check_depth(body)
    meta = body.get("meta") or {}
    query = body.get("query") or {}
    if not isinstance(meta, dict) or not isinstance(query, dict):
        raise InvalidInput("meta and query must be objects")
    rp = query.get("requestParameters") or {}
    if not isinstance(rp, dict):
        raise InvalidInput("requestParameters must be an object")
    params = {}
    for key, value in rp.items():  # the entity-keyed form {"g_variant": {...}} too
        if isinstance(value, dict) and key not in GENOMIC_KEYS:
            params.update(value)
        else:
            params[key] = value
    warnings = (
        _unknown(body, BODY_KEYS, "request body field")
        + _unknown(meta, META_KEYS, "meta field")
        + _unknown(query, QUERY_KEYS, "query field")
        + _unknown(params, PARAMETER_KEYS, "request parameter")
    )
    dataset_ids = params.pop("datasetIds", None) or params.pop("datasets", None)
    pagination = query.get("pagination") or {}
    if not isinstance(pagination, dict):
        raise InvalidInput("pagination must be an object")
    req = build(
        entry_type,
        params={k: params[k] for k in params if k in GENOMIC_KEYS},
        dataset_ids=dataset_ids,
        **_query_fields(query, pagination),
        api_version=meta.get("apiVersion"),
        requested_schemas=meta.get("requestedSchemas"),
        **kw,
    )
    for text in warnings + _unknown(
        pagination, {"skip", "limit", "currentPage", "nextPage", "previousPage"}, "pagination field"
    ):
        req.warn(text)
    return req
