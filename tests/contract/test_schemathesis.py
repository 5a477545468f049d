"""schemathesis over every OpenAPI document, against a real gunicorn node.

Each operation of each document in ``openapi/`` gets generated requests, valid
and invalid (schemathesis' positive and negative modes), sent over HTTP to a
two-worker ``genomeport serve`` holding the demo cohort from ``seed_data/``
(files, Beacon variants and metadata) on PostgreSQL. Every response must:

- not be a server error (``not_a_server_error``);
- match the response schema its document gives for that status
  (``response_schema_conformance``);
- have a status the document lists for the operation (``status_code_conformance``).

``test_seeded_responses_conform`` adds requests that name the seeded objects
(generated ids rarely exist), so the schemas of real 200 answers are checked
too.

The run is bounded and deterministic: ``MAX_EXAMPLES`` generated cases per
operation, derandomized (the same cases on every run), no example database,
no Hypothesis deadline (timing is not what is checked here), and each request
has a timeout.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from server.web.apis import APIS
from server.web.app import OPENAPI_DIR
from tests.api.test_beacon import MINI_HPO

MAX_EXAMPLES = 8
REQUEST_TIMEOUT = 30  # seconds, per request
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
BASES = {api.document: api.base_path for api in APIS}

HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
    suppress_health_check=list(HealthCheck),
)


def populate(db, tmp) -> None:
    """The demo cohort: every seed file, its variants and BFF metadata in the Beacon."""
    from server.beacon.demo import METADATA
    from server.beacon.metadata import load_metadata
    from server.beacon.ontology import load_ontology
    from server.beacon.vcf import load_vcf
    from server.demo import DEMO_DATASET, SEED_DIR, seed_files
    from server.registry import add_dataset, add_files

    add_dataset(db, DEMO_DATASET, access="public", assembly="GPDEMO1")
    add_dataset(db, "ctl", access="controlled", assembly="GPDEMO1", grant_value="urn:ds:ctl")
    add_files(
        db,
        seed_files(SEED_DIR),
        DEMO_DATASET,
        reference=str(SEED_DIR / "reference.fa"),
        progress=False,
    )
    (tmp / "mini-hp.obo").write_text(MINI_HPO)
    load_ontology(db, tmp / "mini-hp.obo", progress=False)
    for dataset in (DEMO_DATASET, "ctl"):
        load_vcf(db, SEED_DIR / "cohort.vcf.gz", dataset, progress=False)
        load_metadata(db, [SEED_DIR / f for f in METADATA], dataset, progress=False)


@pytest.fixture(scope="module")
def node(tmp_path_factory, pg_available):
    """A two-worker gunicorn node with the demo cohort, on a PostgreSQL schema of its own.

    Requests carry a valid passport (registered-access visas) so that the
    authenticated paths of every API are exercised, not only their 401s.
    """

    from tests.conftest import fresh_database, migrated, node_settings, start_server, stop_server
    from tests.unit.auth.tokenkit import make_kit

    var = tmp_path_factory.mktemp("schemathesis")
    kit = make_kit(var / "kit")
    with fresh_database("postgresql", var) as url:
        settings = kit.trusting(
            node_settings(
                var / "var", url, beacon_rate_per_minute=0, c4gh_passphrase="schemathesis-pass"
            )
        )
        db = migrated(settings)
        populate(db, var)
        from server.c4gh.keys import keygen

        keygen(settings)
        server = start_server(settings)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {kit.registered()}"
        try:
            yield server, session
        finally:
            session.close()
            stop_server(server)
            db.dispose()


def _document_test(document: str):
    schema = schemathesis.openapi.from_path(OPENAPI_DIR / document)
    base = BASES[document]

    @schema.parametrize()
    @HYPOTHESIS
    def test(case, node):
        server, session = node
        case.call_and_validate(
            base_url=server.url + base, session=session, checks=CHECKS, timeout=REQUEST_TIMEOUT
        )

    return test


# One test a document the node serves, named after it: test_htsget, test_service_info, ...
for _api in APIS:
    _name = "test_" + _api.document.removesuffix(".yaml").replace("-", "_")
    globals()[_name] = _document_test(_api.document)


# Requests that hit the seeded data (generated ones rarely name an existing id):
# (document, path, method, path parameters, query, body)
SEEDED = [
    (
        "htsget.yaml",
        "/reads/{id}",
        "GET",
        {"id": "DK0001"},
        {"referenceName": "chr1", "start": 0, "end": 5000},
        None,
    ),
    (
        "htsget.yaml",
        "/reads/{id}",
        "GET",
        {"id": "DK0001"},
        {"format": "CRAM", "class": "header"},
        None,
    ),
    ("htsget.yaml", "/variants/{id}", "GET", {"id": "cohort"}, {"referenceName": "chr1"}, None),
    (
        "htsget.yaml",
        "/variants/{id}",
        "POST",
        {"id": "cohort"},
        None,
        {"format": "BCF", "regions": [{"referenceName": "chr1", "start": 0, "end": 1000}]},
    ),
    ("drs.yaml", "/objects/{object_id}", "GET", {"object_id": "DK0001.bam"}, None, None),
    (
        "drs.yaml",
        "/objects/{object_id}",
        "GET",
        {"object_id": "DK0001.bam.bundle"},
        {"expand": True},
        None,
    ),
    (
        "drs.yaml",
        "/objects/{object_id}/access/{access_id}",
        "GET",
        {"object_id": "DK0001.bam", "access_id": "https"},
        None,
        None,
    ),
    ("drs.yaml", "/objects", "POST", {}, None, {"bulk_object_ids": ["DK0001.bam", "nope"]}),
    (
        "beacon.yaml",
        "/g_variants",
        "GET",
        {},
        {"referenceName": "chr1", "start": 0, "end": 1000, "requestedGranularity": "record"},
        None,
    ),
    ("beacon.yaml", "/individuals/{id}", "GET", {"id": "DKP0001"}, None, None),
    ("beacon.yaml", "/biosamples/{id}/g_variants", "GET", {"id": "DK0001"}, None, None),
    ("beacon.yaml", "/cohorts/{id}", "GET", {"id": "demo-cohort"}, None, None),
    ("beacon.yaml", "/datasets/{id}/individuals", "GET", {"id": "demo"}, None, None),
    ("beacon.yaml", "/filtering_terms", "GET", {}, None, None),
    ("wes.yaml", "/runs", "GET", {}, {"page_size": 5}, None),
    ("service-info.yaml", "/services", "GET", {}, None, None),
    ("fdp.yaml", "/", "GET", {}, None, None),
    ("fdp.yaml", "/dataset/{datasetId}", "GET", {"datasetId": "demo"}, None, None),
    ("fdp.yaml", "/dataset/{datasetId}", "GET", {"datasetId": "demo"}, {"format": "jsonld"}, None),
    (
        "fdp.yaml",
        "/distribution/{datasetId}/{api}",
        "GET",
        {"datasetId": "demo", "api": "drs"},
        None,
        None,
    ),
]


@pytest.mark.parametrize(
    "document,path,method,path_parameters,query,body",
    SEEDED,
    ids=[f"{m} {p} {sorted((q or {}).items())}" for _, p, m, _, q, _ in SEEDED],
)
def test_seeded_responses_conform(node, document, path, method, path_parameters, query, body):
    server, session = node
    schema = schemathesis.openapi.from_path(OPENAPI_DIR / document)
    kwargs = {"path_parameters": path_parameters, "query": query}
    if body is not None:
        kwargs.update(body=body, media_type="application/json")
    case = schema[path][method].Case(**kwargs)
    response = case.call_and_validate(
        base_url=server.url + BASES[document],
        session=session,
        checks=CHECKS,
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code == 200, response.text[:500]
